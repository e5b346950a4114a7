"""The `Delivery` the app uses: notifications and room messages through the WebSocket gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.errors import NotFound
from mathia.rooms.models import Room, SenderKind
from mathia.rooms.realtime import RoomBus, notify_user
from mathia.rooms.services import message_out, post_message


class GatewayDelivery:
    def __init__(self, redis: Redis, bus: RoomBus) -> None:
        self._redis = redis
        self._bus = bus
        self._pending: set[asyncio.Task[None]] = set()

    async def notify(self, user_ids: Sequence[UUID], frame: Mapping[str, Any]) -> None:
        for user_id in user_ids:
            await notify_user(self._redis, user_id, dict(frame))

    async def post_message(self, session: AsyncSession, tenant_id: UUID, room_id: UUID, body: str) -> None:
        room = await session.get(Room, room_id)
        if room is None or room.tenant_id != tenant_id:
            raise NotFound("no such room in this workspace")
        message = await post_message(session, room=room, body=body, sender_kind=SenderKind.SYSTEM)
        frame = {"type": "message.new", "message": message_out(message, None)}
        loop = asyncio.get_running_loop()

        # Subscribers hear of the message only once it is committed, so a replay finds it too.
        def publish(_session: object) -> None:
            task = loop.create_task(self._bus.publish(room_id, frame))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        event.listen(session.sync_session, "after_commit", publish, once=True)
