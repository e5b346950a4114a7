"""Plugin jobs (`mathia_jobs`) as worker jobs: importing this module registers them."""

from __future__ import annotations

import functools
import os
from typing import Any

from mathia.config import Settings
from mathia.connectors import manager
from mathia.connectors.api import Job
from mathia.jobs import JobFunction, cron, every_seconds, task


def _wrap(job: Job) -> JobFunction:
    async def run(_ctx: Any, **_kwargs: Any) -> None:
        await job.function()

    # The worker keys jobs by qualified name: one per plugin job.
    run.__qualname__ = run.__name__ = f"plugin:{job.name}"
    return run


def _fixed(expression: str, _settings: Settings) -> str:
    return expression


def _schedule(every: int) -> str:
    """A six-field cron expression (seconds last) for "every `every` seconds"."""
    if every < 60:
        return every_seconds(every)
    if every < 3600:
        return f"*/{every // 60} * * * * 0"
    return f"0 */{max(1, every // 3600)} * * * 0"


def register() -> None:
    allowed = os.environ.get("MATHIA_PLUGINS")
    names = [n.strip() for n in allowed.split(",") if n.strip()] if allowed else None
    for job in manager.load(names).jobs:
        if job.every is None:
            task(timeout=job.timeout)(_wrap(job))
        else:
            cron(functools.partial(_fixed, _schedule(job.every)), timeout=job.timeout)(_wrap(job))


register()
