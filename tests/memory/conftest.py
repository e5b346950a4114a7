from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.config import Settings
from mathia.memory import services
from mathia.memory.embeddings import Embedder
from mathia.memory.models import Document
from mathia.rooms.models import Room, RoomMember
from mathia.rooms.services import create_room
from mathia.tenants.models import Membership, Role, Workspace
from mathia.tenants.services import create_workspace
from tests import SECRET_KEY

CORPUS = Path(__file__).parent / "corpus"


@pytest.fixture(scope="session")
def memory_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(
        {}, data_dir=tmp_path_factory.mktemp("memory"), secret_key=SECRET_KEY, max_document_bytes=64 * 1024
    )


@dataclass
class Seed:
    """Rows made straight through the services, for tests below the HTTP layer."""

    session: AsyncSession
    settings: Settings

    async def user(self, name: str = "Ada") -> User:
        user = User(
            email=f"{name.lower()}-{secrets.token_hex(4)}@example.com", display_name=name, password_hash="x"
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def workspace(self, owner: User, name: str = "Acme") -> Workspace:
        return await create_workspace(self.session, owner, name)

    async def join_workspace(self, workspace: Workspace, user: User, role: Role = Role.MEMBER) -> None:
        self.session.add(Membership(tenant_id=workspace.id, user_id=user.id, role=role))
        await self.session.flush()

    async def room(
        self, workspace: Workspace, creator: User, private: bool = False, name: str = "general"
    ) -> Room:
        return await create_room(self.session, workspace.id, creator, name, private)

    async def join_room(self, room: Room, user: User) -> None:
        self.session.add(RoomMember(tenant_id=room.tenant_id, room_id=room.id, user_id=user.id))
        await self.session.flush()

    async def document(
        self,
        user: User,
        name: str,
        text: str | bytes,
        *,
        room: Room | None = None,
        workspace: Workspace | None = None,
        embedder: Embedder | None = None,
    ) -> Document:
        data = text.encode() if isinstance(text, str) else text
        return await services.add_document(
            self.session,
            settings=self.settings,
            user_id=user.id,
            filename=name,
            declared_type=None,
            data=data,
            room_id=room.id if room else None,
            workspace_id=workspace.id if workspace else None,
            embedder=embedder,
        )


@pytest.fixture
def seed(session: AsyncSession, memory_settings: Settings) -> Seed:
    return Seed(session, memory_settings)


@pytest.fixture(scope="session")
def memory_base_url(database_url: str, redis_url: str, memory_settings: Settings) -> Iterator[str]:
    """The whole app on loopback, on SQLite and on PostgreSQL in turn, with a 64 KiB document limit."""
    from mathia.app import create_app
    from mathia.connectors.testing import serve

    settings = msgspec.structs.replace(memory_settings, database_url=database_url, redis_url=redis_url)
    with serve(create_app(settings)) as url:
        yield url
