"""Fan-out through Redis pub/sub. Every process publishes here: room frames on its room bus,
which also hands them to its own sockets; each web process's ChannelsPlugin subscribes once per
channel and hands the other processes' frames to its sockets."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis

_encode = msgspec.json.Encoder().encode
ORIGIN_BYTES = 8  # a room channel's message is its publisher's origin, then the frame's JSON
ROOM_CHANNEL_PREFIX = "room:"


def room_channel(room_id: UUID) -> str:
    return f"{ROOM_CHANNEL_PREFIX}{room_id}"


def user_channel(user_id: UUID) -> str:
    return f"user:{user_id}"


async def notify_user(redis: Redis, user_id: UUID, frame: Any) -> None:
    """Send a frame (usually `{"type": "notification", "kind": ...}`) to every socket of one user."""
    await redis.publish(user_channel(user_id), _encode(frame))


def split_room_message(data: bytes) -> tuple[bytes, bytes]:
    """A room channel's message as (the publisher's origin, the frame's JSON)."""
    return data[:ORIGIN_BYTES], data[ORIGIN_BYTES:]


class RoomBus:
    """Room frames, for the sockets of every process. A frame goes at once to this process's
    own sockets (through `deliver_here`, which the web app's room feeds set), and through Redis
    to the other processes', marked with this bus's `origin` so that its own feeds skip it:
    a member on the publishing process is not kept waiting for a Redis round trip and a turn
    of the subscriber (a streamed answer's deltas are most of the traffic).

    The Redis publishes go in pipelines: the frames that queue while one pipeline is in flight
    go together in the next, at one round trip, so many concurrent streams cost one Redis call
    per batch, not per frame. An idle bus sends a frame at once. Frames reach Redis in the order
    they were published; `publish` returns once Redis has the frame, and raises what Redis said
    if it did not take it."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.origin = secrets.token_bytes(ORIGIN_BYTES)
        self.deliver_here: Callable[[UUID, bytes], None] | None = None
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def publish(self, room_id: UUID, frame: Any) -> None:
        data = _encode(frame)
        if self.deliver_here is not None:
            self.deliver_here(room_id, data)
        sent = asyncio.get_running_loop().create_future()
        self._waiting.append((room_channel(room_id), self.origin + data, sent))
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
