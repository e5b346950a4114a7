"""Per-user and per-workspace limits on AI generations, counted in Redis (fixed windows)."""

from __future__ import annotations

from uuid import UUID

from redis.asyncio import Redis

from mathia.config import Settings
from mathia.errors import RateLimited
from mathia.ratelimit import exhausted, hit


async def ai_rate_limit(
    redis: Redis, settings: Settings, *, workspace_id: UUID, user_id: UUID
) -> float | None:
    """Count one generation for the user and the workspace: None when allowed, else seconds to wait.

    Call it before starting a generation. A full workspace window is checked
    first without counting, so a refused request costs the user nothing.
    """
    window = settings.ai_rate_window
    workspace_key = f"ai:workspace:{workspace_id}"
    if (wait := await exhausted(redis, workspace_key, settings.ai_workspace_rate_limit)) is not None:
        return wait
    if (wait := await hit(redis, f"ai:user:{user_id}", settings.ai_user_rate_limit, window)) is not None:
        return wait
    return await hit(redis, workspace_key, settings.ai_workspace_rate_limit, window)


async def enforce_ai_rate_limit(
    redis: Redis, settings: Settings, *, workspace_id: UUID, user_id: UUID
) -> None:
    """`ai_rate_limit`, raising `RateLimited` (HTTP 429, WS `rate_limited`) when over a limit."""
    wait = await ai_rate_limit(redis, settings, workspace_id=workspace_id, user_id=user_id)
    if wait is not None:
        raise RateLimited(f"too many assistant requests: try again in {max(1, round(wait))} s", wait)
