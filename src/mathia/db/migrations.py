"""Apply the alembic migrations from code (`mathia serve`, `mathia db upgrade`, tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from mathia.config import Settings

# A source checkout keeps migrations at the top level; a built wheel carries them inside the package.
_CANDIDATES = (Path(__file__).parents[3] / "alembic", Path(__file__).parent.parent / "migrations")


def alembic_config(url: str) -> Config:
    script_location = next(path for path in _CANDIDATES if (path / "env.py").exists())
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["url"] = url
    return config


def upgrade(settings: Settings) -> None:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.sqlalchemy_url), "heads")


async def upgrade_async(settings: Settings) -> None:
    # env.py runs its own event loop, so it must run off this one.
    await asyncio.to_thread(upgrade, settings)
