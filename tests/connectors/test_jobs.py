"""Plugin jobs become worker jobs with their schedule and timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from mathia import jobs
from mathia.connectors import jobs as plugin_jobs
from tests.connectors import installing

TICKER = """
from mathia.connectors import Job, hookimpl

RUNS = []


async def tick():
    RUNS.append("tick")


@hookimpl
def mathia_jobs():
    return [Job("ticker-tick", tick, every=120, timeout=5), Job("ticker-once", tick)]
"""


async def test_plugin_jobs_are_registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installing.install(monkeypatch, tmp_path, "mathia_ticker", "ticker", TICKER)
    monkeypatch.setattr(jobs, "_REGISTRY", dict(jobs._REGISTRY))
    plugin_jobs.register()
    periodic, once = jobs._REGISTRY["plugin:ticker-tick"], jobs._REGISTRY["plugin:ticker-once"]
    assert (periodic.timeout, once.timeout, once.schedule) == (5, 60, None)
    assert periodic.schedule is not None and periodic.schedule(None) == "*/2 * * * * 0"  # type: ignore[arg-type]
    await periodic.function({})
    import mathia_ticker

    assert mathia_ticker.RUNS == ["tick"]
