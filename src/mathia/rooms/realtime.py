"""Fan-out through Redis pub/sub. Every process publishes here; each web process's
ChannelsPlugin subscribes once per channel and hands frames to its sockets."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis

_encode = msgspec.json.Encoder().encode


def room_channel(room_id: UUID) -> str:
    return f"room:{room_id}"


def user_channel(user_id: UUID) -> str:
    return f"user:{user_id}"


async def publish_room(redis: Redis, room_id: UUID, frame: Any) -> None:
    await redis.publish(room_channel(room_id), _encode(frame))


async def notify_user(redis: Redis, user_id: UUID, frame: Any) -> None:
    """Send a frame (usually `{"type": "notification", "kind": ...}`) to every socket of one user."""
    await redis.publish(user_channel(user_id), _encode(frame))
