"""The cache plugins get, on the real Redis: its lock holds across processes."""

from __future__ import annotations

import asyncio
import time
import uuid

from redis.asyncio import Redis

from mathia.connectors.services import RedisCache


async def test_one_holder_at_a_time_across_clients(redis: Redis, redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4()}:"
    other = Redis.from_url(redis_url)  # as another process would hold it
    caches = [RedisCache(redis, prefix), RedisCache(other, prefix)]
    inside: list[str] = []

    async def hold(cache: RedisCache, name: str) -> None:
        async with cache.lock("refresh:ada", ttl=5):
            inside.append(f"{name} in")
            await asyncio.sleep(0.2)
            inside.append(f"{name} out")

    try:
        await asyncio.gather(*(hold(cache, str(i)) for i, cache in enumerate(caches * 2)))
    finally:
        await other.aclose()
    assert all(inside[i].split()[0] == inside[i + 1].split()[0] for i in range(0, len(inside), 2))
    assert len(inside) == 8


async def test_a_holder_that_died_frees_the_lock_after_its_ttl(redis: Redis) -> None:
    prefix = f"test:{uuid.uuid4()}:"
    cache = RedisCache(redis, prefix)
    # What a process that died holding it leaves: the lock's key, expiring with the lock's ttl.
    await redis.set(f"{prefix}lock:refresh:ada", "a dead holder's token", px=1000)
    started = time.monotonic()
    async with cache.lock("refresh:ada", ttl=5):
        waited = time.monotonic() - started
    assert 0.5 < waited < 2
