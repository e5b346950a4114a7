"""Engine and session configuration, shared by the web app, the worker and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, EngineConfig, SQLAlchemyAsyncConfig
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.config import Settings


def database_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    url = settings.sqlalchemy_url
    sqlite = url.startswith("sqlite")
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        before_send_handler="autocommit",
        session_config=AsyncSessionConfig(expire_on_commit=False),
        engine_config=EngineConfig(pool_pre_ping=not sqlite),
        create_all=False,
    )
    if sqlite:
        event.listen(config.get_engine().sync_engine, "connect", _sqlite_pragmas)
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; busy_timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


@asynccontextmanager
async def session_scope(config: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncSession]:
    """A session outside a request (WebSocket frames, jobs): commits on success, rolls back on error."""
    async with config.get_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
