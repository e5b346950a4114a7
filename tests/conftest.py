from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mathia.config import Settings
from mathia.db import database_config
from mathia.db.migrations import upgrade
from tests import SECRET_KEY
from tests.services import POSTGRES_URL, REDIS_URL, require

# Two shared cores: timing-based health checks would fail on load, not on bugs.
hypothesis_settings.register_profile("mathia", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("mathia")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    require(POSTGRES_URL, "PostgreSQL")
    name = f"mathia_test_{secrets.token_hex(4)}"
    admin_dsn = POSTGRES_URL.replace("+asyncpg", "")

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    import asyncio

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(Settings.from_env({}, database_url=url, secret_key=SECRET_KEY))
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database on a private PostgreSQL 16 with pgvector, both shipped by the
    `pgserver` wheel: the shared server has no pgvector here, and the vector path must run."""
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgvector"), cleanup_mode="delete")
    try:
        server.psql("CREATE DATABASE mathia")
        url = server.get_uri("mathia").replace("postgresql://", "postgresql+asyncpg://", 1)
        upgrade(Settings.from_env({}, database_url=url, secret_key=SECRET_KEY))
        yield url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database file for this test session."""
    data_dir: Path = tmp_path_factory.mktemp("sqlite")
    settings = Settings.from_env({}, data_dir=data_dir, secret_key=SECRET_KEY)
    upgrade(settings)
    return settings.sqlalchemy_url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Parametrises a test over both databases: the SQL layer must behave the same on each."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = database_config(
        Settings.from_env({}, database_url=database_url, secret_key=SECRET_KEY)
    ).get_engine()
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield session


@pytest.fixture(scope="session")
def redis_url() -> str:
    require(REDIS_URL, "Redis")
    return REDIS_URL


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def app_settings(postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(
        {},
        database_url=postgres_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("app"),
        secret_key=secrets.token_hex(16),
    )


@pytest.fixture(scope="session")
def base_url(app_settings: Settings) -> Iterator[str]:
    """The app, served by uvicorn on loopback against the session's PostgreSQL and Redis."""
    from mathia.app import create_app
    from mathia.cli import WEBSOCKET_OPTIONS
    from mathia.connectors.testing import serve

    with serve(create_app(app_settings), **WEBSOCKET_OPTIONS) as url:
        yield url
