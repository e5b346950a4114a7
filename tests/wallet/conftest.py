from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mathia.tenants.models import Workspace
from mathia.wallet import services

OpenAccount = Callable[[int], Awaitable[tuple[UUID, UUID]]]


@pytest.fixture
def open_account(engine: AsyncEngine) -> OpenAccount:
    """A new workspace with its wallet holding `grant`, committed: answers (tenant id, account id)."""

    async def open_(grant: int) -> tuple[UUID, UUID]:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            workspace = Workspace(name="wallet test")
            session.add(workspace)
            await session.flush()
            account = await services.open_workspace_account(session, workspace.id, grant)
            await session.commit()
            return workspace.id, account.id

    return open_
