"""Fan-out through Redis pub/sub. Every process publishes here; each web process's
ChannelsPlugin subscribes once per channel and hands frames to its sockets."""

from __future__ import annotations

import asyncio
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


class Publisher:
    """Publishes room frames in pipelines: the frames that queue while one pipeline is in flight
    go together in the next, at one round trip, so many concurrent streams (the assistant's
    deltas) cost one Redis call per batch, not per frame. An idle publisher sends a frame at
    once. `publish` returns once Redis has the frame, so one caller's frames stay in order."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def publish_room(self, room_id: UUID, frame: Any) -> None:
        sent = asyncio.get_running_loop().create_future()
        self._waiting.append((room_channel(room_id), _encode(frame), sent))
        if self._sending is None:
            self._sending = asyncio.create_task(self._send())
        await sent

    async def aclose(self) -> None:
        """Wait for the batch in flight (call once nothing publishes any more)."""
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)

    async def _send(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for channel, data, _ in batch:
                            pipe.publish(channel, data)
                        await pipe.execute()
                except Exception as exc:  # every caller of the batch gets the error
                    for *_, sent in batch:
                        if not sent.done():
                            sent.set_exception(exc)
                else:
                    for *_, sent in batch:
                        if not sent.done():
                            sent.set_result(None)
        finally:
            self._sending = None
