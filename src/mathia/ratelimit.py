"""Fixed-window rate limits in Redis. One Lua script increments and checks
atomically, so concurrent requests on many processes cannot slip past the limit."""

from __future__ import annotations

from typing import Any

from litestar import Request
from redis.asyncio import Redis

_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count > tonumber(ARGV[2]) then return math.max(redis.call('PTTL', KEYS[1]), 1) end
return 0
"""


async def hit(redis: Redis, key: str, limit: int, window_seconds: float) -> float | None:
    """Count one event; None when within `limit` per window, else seconds until the window resets."""
    wait_ms = await redis.eval(_HIT, 1, f"mathia:rl:{key}", int(window_seconds * 1000), limit)
    return int(wait_ms) / 1000 if int(wait_ms) else None


async def exhausted(redis: Redis, key: str, limit: int) -> float | None:
    """Without counting: None while fewer than `limit` events were counted, else seconds until reset."""
    full_key = f"mathia:rl:{key}"
    count = await redis.get(full_key)
    if count is None or int(count) < limit:
        return None
    return max(int(await redis.pttl(full_key)), 1) / 1000


def client_address(request: Request[Any, Any, Any]) -> str:
    """The peer's IP, to limit by (behind a proxy, that proxy's: run uvicorn with its forwarded-IP
    settings there)."""
    return request.client.host if request.client else "unknown"
