"""Presence across processes when Redis goes away and comes back (two `Presence` trackers on
the real Redis stand for two processes)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from mathia.rooms.presence import ALIVE, Presence, _room_key, _rooms_of, presence_frame
from mathia.rooms.realtime import RoomBus, room_channel, split_room_message


async def reaped(redis: Redis, cut_off: Presence, other: Presence) -> None:
    """Cut off from Redis for longer than the TTL: the other process reaps it."""
    await redis.zadd(ALIVE, {cut_off.process: time.time() - 10 * cut_off.ttl})
    await other.reap()


async def forgotten(redis: Redis, cut_off: Presence, other: Presence) -> None:
    """Redis restarted without its data (as far as this process is concerned)."""
    await redis.zrem(ALIVE, cut_off.process)
    await redis.delete(_rooms_of(cut_off.process), *(_room_key(room) for room in cut_off.sockets))


@pytest.mark.parametrize("outage", [reaped, forgotten])
async def test_a_process_whose_heartbeat_was_lost_counts_its_sockets_again(
    redis: Redis, outage: Callable[[Redis, Presence, Presence], Awaitable[None]]
) -> None:
    room, ada = uuid.uuid4(), uuid.uuid4()
    cut_off, other = Presence(redis, RoomBus(redis), ttl=5), Presence(redis, RoomBus(redis), ttl=5)
    await cut_off.beat()
    await other.beat()
    await cut_off.join(room, ada)
    await cut_off.join(room, ada)  # two sockets of Ada's
    async with redis.pubsub() as frames:
        await frames.subscribe(room_channel(room))
        await outage(redis, cut_off, other)
        assert str(ada) not in await other.online(room)

        await cut_off.beat()  # the next heartbeat once Redis answers again
        assert (await other.online(room))[str(ada)] == 2
        published: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while presence_frame(room, ada, "online") not in published:
                message = await frames.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    published.append(json.loads(split_room_message(message["data"])[1]))
    announced = [frame["status"] for frame in published]
    assert announced == (["offline", "online"] if outage is reaped else ["online"])
    # Its sockets leave as before, under the new id.
    await cut_off.leave(room, ada)
    await cut_off.leave(room, ada)
    assert str(ada) not in await other.online(room)
    assert cut_off.sockets == {}


async def test_a_heartbeat_that_was_kept_changes_nothing(redis: Redis) -> None:
    room, ada = uuid.uuid4(), uuid.uuid4()
    tracker = Presence(redis, RoomBus(redis), ttl=5)
    await tracker.beat()
    await tracker.join(room, ada)
    process = tracker.process
    await tracker.beat()
    assert tracker.process == process
    assert (await tracker.online(room))[str(ada)] == 1
    await tracker.leave(room, ada)
