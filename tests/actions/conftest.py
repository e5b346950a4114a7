from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.config import Settings
from mathia.connectors import manager
from mathia.connectors.crypto import Crypto
from mathia.connectors.services import ConnectorRuntime
from mathia.tenants.models import Membership, Role, Workspace


@dataclass
class RecordingDelivery:
    """Stands in for the WebSocket gateway: keeps what would have been sent."""

    frames: list[tuple[UUID, dict[str, Any]]] = field(default_factory=list)
    messages: list[tuple[UUID, str]] = field(default_factory=list)

    async def notify(self, user_ids: Sequence[UUID], frame: Mapping[str, Any]) -> None:
        self.frames.extend((u, dict(frame)) for u in user_ids)

    async def post_message(self, session: AsyncSession, tenant_id: UUID, room_id: UUID, body: str) -> None:
        self.messages.append((room_id, body))


@pytest.fixture
async def connectors(redis: Redis) -> AsyncIterator[ConnectorRuntime]:
    """The runtime as the app builds it: built-ins plus every installed plugin, found by entry point."""
    from mathia.actions import builtin

    settings = Settings.from_env(
        {}, secret_key=secrets.token_hex(16), action_rate_limit=5, action_rate_window=60
    )
    async with httpx.AsyncClient(timeout=5) as http:
        yield ConnectorRuntime(
            settings,
            manager.load(builtins=[("builtin", builtin)]),
            redis,
            http,
            Crypto.from_settings(settings),
            RecordingDelivery(),
        )


@dataclass
class Team:
    workspace: UUID
    owner: UUID
    admin: UUID
    member: UUID
    guest: UUID


@pytest.fixture
async def team(session: AsyncSession) -> Team:
    """A workspace with one user of each role (flushed, not committed: the test's session sees it)."""
    workspace = Workspace(name="Acme")
    session.add(workspace)
    await session.flush()
    ids = {}
    for role in Role:
        user = User(
            email=f"{role}-{secrets.token_hex(4)}@example.com",
            display_name=role.value.title(),
            password_hash="x",
        )
        session.add(user)
        await session.flush()
        session.add(Membership(tenant_id=workspace.id, user_id=user.id, role=role))
        ids[role.value] = user.id
    await session.flush()
    return Team(workspace.id, ids["owner"], ids["admin"], ids["member"], ids["guest"])
