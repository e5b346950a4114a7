"""The room bus on a real Redis: every frame arrives, each caller's in order, in fewer round trips
than frames when callers publish at once; this process's sockets get each frame as it is
published, before Redis has it; a Redis failure reaches every caller of its batch."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mathia.rooms.realtime import RoomBus, room_channel
from tests.reminders.world import eventually, frames


async def test_concurrent_streams_arrive_whole_and_in_order_in_fewer_round_trips(redis: Redis) -> None:
    rooms = [uuid.uuid4() for _ in range(5)]
    bus = RoomBus(redis)
    round_trips = 0
    pipeline = redis.pipeline

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal round_trips
        round_trips += 1
        return pipeline(*args, **kwargs)  # type: ignore[arg-type]

    redis.pipeline = counted  # type: ignore[method-assign]

    async def stream(room: uuid.UUID, answer: int) -> None:
        for piece in range(40):
            await bus.publish(room, {"answer": answer, "piece": piece})

    origins: set[bytes] = set()
    try:
        async with frames(redis, *(room_channel(r) for r in rooms), origins=origins) as seen:
            await asyncio.gather(*(stream(rooms[i % 5], i) for i in range(20)))

            async def all_arrived() -> bool:
                return len(seen) == 20 * 40

            await eventually(all_arrived, within=10)
    finally:
        del redis.pipeline
    pieces: dict[int, list[int]] = defaultdict(list)
    for frame in seen:
        pieces[frame["answer"]].append(frame["piece"])
    assert pieces == {answer: list(range(40)) for answer in range(20)}
    assert origins == {bus.origin}  # so this process's feeds can skip them
    assert round_trips < 20 * 40 / 2, round_trips  # twenty streams at once share pipelines


async def test_this_process_gets_its_frames_as_published_and_callers_get_redis_failures() -> None:
    """Local delivery does not wait for Redis: with Redis unreachable, this process's sockets get
    every frame, in order, and each caller still learns that Redis did not take its frame."""
    broken = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    bus = RoomBus(broken)
    here: list[tuple[uuid.UUID, Any]] = []
    bus.deliver_here = lambda room, data: here.append((room, msgspec.json.decode(data)))
    room = uuid.uuid4()
    try:
        results = await asyncio.gather(
            *(bus.publish(room, {"n": n}) for n in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        # The next frame gets a new attempt (and its own error), not a bus stuck on the last one.
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(bus.publish(room, {"n": 3}), timeout=5)
    finally:
        await broken.aclose()
    assert here == [(room, {"n": n}) for n in range(4)]
