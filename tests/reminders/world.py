"""Shared by the reminder and moderation tests: a workspace with people and a room,
settings for real workers on an isolated Redis database, and workers to run."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import database_config
from mathia.jobs import run_worker
from mathia.rooms.models import Room, RoomMember
from mathia.rooms.realtime import ROOM_CHANNEL_PREFIX, split_room_message
from mathia.tenants.models import Membership, Role, Workspace
from tests import SECRET_KEY

# The worker tests own this Redis database (and flush it), so other tests' queues and streams stay apart.
WORKER_REDIS_DB = 11


@dataclass
class World:
    workspace: Workspace
    owner: User
    members: list[User]
    room: Room


async def make_world(session: AsyncSession, members: int = 2) -> World:
    tag = secrets.token_hex(4)
    owner = User(email=f"owner-{tag}@example.com", display_name="Owner", password_hash="x")
    people = [
        User(email=f"m{i}-{tag}@example.com", display_name=f"M{i}", password_hash="x") for i in range(members)
    ]
    session.add_all([owner, *people])
    await session.flush()
    workspace = Workspace(name=f"ws-{tag}", created_by=owner.id)
    session.add(workspace)
    await session.flush()
    session.add(Membership(tenant_id=workspace.id, user_id=owner.id, role=Role.OWNER))
    session.add_all([Membership(tenant_id=workspace.id, user_id=p.id, role=Role.MEMBER) for p in people])
    room = Room(tenant_id=workspace.id, name="general", private=False, created_by=owner.id)
    session.add(room)
    await session.flush()
    session.add_all(
        [RoomMember(tenant_id=workspace.id, room_id=room.id, user_id=u.id) for u in [owner, *people]]
    )
    await session.commit()
    return World(workspace, owner, people, room)


def worker_redis_url(redis_url: str) -> str:
    return f"{redis_url.rsplit('/', 1)[0]}/{WORKER_REDIS_DB}"


def worker_settings(database_url: str, redis_url: str, **overrides: Any) -> Settings:
    return Settings.from_env(
        {},
        database_url=database_url,
        redis_url=worker_redis_url(redis_url),
        secret_key=SECRET_KEY,
        **overrides,
    )


@asynccontextmanager
async def session_on(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the settings' database; its engine is disposed afterwards."""
    config = database_config(settings)
    async with async_sessionmaker(config.get_engine(), expire_on_commit=False)() as session:
        yield session
    await config.get_engine().dispose()


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(run_worker(settings))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def frames(
    redis: Redis, *channels: str, origins: set[bytes] | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect every frame published on `channels` (Redis pub/sub, as the WebSocket fan-out uses),
    and the origins of the room frames in `origins` when given."""
    received: list[dict[str, Any]] = []
    pubsub = redis.pubsub()
    await pubsub.subscribe(*channels)

    async def listen() -> None:
        async for item in pubsub.listen():
            if item["type"] == "message":
                data = item["data"]
                # Room frames carry their publisher's origin.
                if item["channel"].decode().startswith(ROOM_CHANNEL_PREFIX):
                    origin, data = split_room_message(data)
                    if origins is not None:
                        origins.add(origin)
                received.append(msgspec.json.decode(data))

    listener = asyncio.create_task(listen())
    try:
        yield received
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await pubsub.aclose()


async def eventually(check: Any, within: float = 20, interval: float = 0.1) -> None:
    """Wait until the async predicate `check()` holds, failing after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)
