from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text

from mathia.runtime import Runtime

_CHECK_TIMEOUT = 2.0


@get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", tags=["health"])
async def ready(runtime: NamedDependency[Runtime]) -> Response[dict[str, str]]:
    async def database() -> None:
        async with runtime.db.get_engine().connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def redis() -> None:
        await runtime.redis.ping()

    for name, check in (("database", database), ("redis", redis)):
        try:
            await asyncio.wait_for(check(), _CHECK_TIMEOUT)
        except Exception as exc:
            detail = f"{name} is not answering: {type(exc).__name__}"
            return Response(
                {"status": "unavailable", "detail": detail}, status_code=HTTP_503_SERVICE_UNAVAILABLE
            )
    return Response({"status": "ok"})
