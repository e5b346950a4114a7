"""The long-lived clients a process shares: settings, database, Redis (and the room frames
published through it), outbound HTTP.

The web app and the worker each build one `Runtime` and close it on exit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from redis.asyncio import Redis

from mathia.config import Settings
from mathia.db import database_config
from mathia.rooms.realtime import RoomBus

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mathia.auth.models import User
    from mathia.rooms.models import Message, Room

SendCheck = Callable[["AsyncSession", "User", "Room"], Awaitable[None]]
MessageListener = Callable[["User", "Room", "Message"], Awaitable[None]]


class Runtime:
    # A plain class, not a dataclass: Litestar would otherwise try to validate its fields
    # every time it injects it.
    def __init__(self, settings: Settings) -> None:
        if settings.redis_url is None:
            raise ValueError("redis_url is not set (the CLI starts the embedded Redis and sets it)")
        self.settings = settings
        self.db: SQLAlchemyAsyncConfig = database_config(settings)
        self.redis: Redis = Redis.from_url(settings.redis_url)
        self.room_bus = RoomBus(self.redis)
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
        # Run before a member's message is stored; raise a MathiaError to refuse it (a mute).
        self.send_checks: list[SendCheck] = []
        # Called after a member's message is stored and sent (moderation, the assistant).
        self.message_listeners: list[MessageListener] = []

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.room_bus.aclose()
        await self.redis.aclose()
        await self.db.get_engine().dispose()
