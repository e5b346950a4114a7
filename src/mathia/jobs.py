"""Background jobs on saq: the queue, the job registry and the worker.

Domains declare their jobs with `@task(timeout=...)` (and `@cron(...)` for periodic ones)
in their own `jobs.py`, listed in `JOB_MODULES`. Every job carries an explicit timeout:
saq's default of 10 s is never relied on. Several workers may run against one Redis;
work that must not be lost lives in the database or a Redis stream, and the queue only
wakes a worker up.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypedDict

from redis.asyncio import Redis
from saq import CronJob, Queue, Worker
from saq.queue.redis import RedisQueue
from saq.types import PartialTimersDict

from mathia.config import Settings
from mathia.runtime import Runtime

log = logging.getLogger(__name__)

QUEUE_NAME = "mathia"
# Modules whose import registers jobs; add a domain's `jobs` module here.
JOB_MODULES = (
    "mathia.moderation.jobs",
    "mathia.reminders.jobs",
    "mathia.connectors.jobs",
    "mathia.actions.jobs",
)


class JobContext(TypedDict):
    """What every job function receives as its first argument."""

    runtime: Runtime
    queue: Queue
    worker_id: str


JobFunction = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    function: JobFunction
    timeout: int
    retries: int
    # Cron jobs only: a croniter expression (six fields: the last one is seconds).
    schedule: Callable[[Settings], str] | None = None


_REGISTRY: dict[str, JobSpec] = {}


def task(*, timeout: int, retries: int = 1) -> Callable[[JobFunction], JobFunction]:
    """Register an async job function under its qualified name."""

    def register(function: JobFunction) -> JobFunction:
        _REGISTRY[function.__qualname__] = JobSpec(function, timeout, retries)
        return function

    return register


def cron(schedule: Callable[[Settings], str], *, timeout: int) -> Callable[[JobFunction], JobFunction]:
    """Register a periodic job; `schedule` turns the settings into a cron expression."""

    def register(function: JobFunction) -> JobFunction:
        _REGISTRY[function.__qualname__] = JobSpec(function, timeout, 0, schedule)
        return function

    return register


def every_seconds(seconds: int) -> str:
    return f"* * * * * */{seconds}"


def registry() -> dict[str, JobSpec]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return _REGISTRY


def build_queue(settings: Settings) -> RedisQueue:
    # Built from a client rather than `Queue.from_url`, which refuses the unix:// URL of the embedded Redis.
    if settings.redis_url is None:
        raise ValueError("redis_url is not set (the CLI starts the embedded Redis and sets it)")
    return RedisQueue(Redis.from_url(settings.redis_url), name=QUEUE_NAME)


def queue_on(redis: Redis) -> RedisQueue:
    """A queue handle over a client the caller owns (the web app's): enqueue only, never disconnect."""
    return RedisQueue(redis, name=QUEUE_NAME)


async def enqueue(
    queue: Queue, function: JobFunction, *, key: str | None = None, scheduled: int = 0, **kwargs: Any
) -> None:
    """Enqueue a registered job with its declared timeout; a `key` already queued is not added twice."""
    spec = registry()[function.__qualname__]
    job_options: dict[str, Any] = {"timeout": spec.timeout, "retries": spec.retries, "scheduled": scheduled}
    if key is not None:
        job_options["key"] = key
    await queue.enqueue(function.__qualname__, **job_options, **kwargs)


def build_worker(settings: Settings, queue: Queue, runtime: Runtime) -> Worker[Any]:
    jobs = registry()
    functions = [(name, spec.function) for name, spec in jobs.items() if spec.schedule is None]
    cron_jobs = [
        CronJob(spec.function, cron=spec.schedule(settings), timeout=spec.timeout)
        for spec in jobs.values()
        if spec.schedule is not None
    ]

    async def on_start(_ctx: Any) -> None:
        # Whatever came due while no worker ran is handled now, not at the next scheduled run.
        for spec in jobs.values():
            if spec.schedule is not None:
                await enqueue(queue, spec.function, key=f"startup:{spec.function.__qualname__}")

    worker: Worker[Any] = Worker(
        queue,
        functions,
        cron_jobs=cron_jobs,
        concurrency=settings.worker_concurrency,
        startup=on_start,
        # Jobs left active by a dead worker are retried once their timeout passed.
        timers=PartialTimersDict(schedule=1, worker_info=10, sweep=10, abort=1),
        # Idle workers wait in a blocking dequeue, so a stop always uses the whole grace period.
        shutdown_grace_period_s=2,
    )
    # The process owner handles signals: `mathia worker` cancels this task, `mathia serve` stops its tasks.
    worker.SIGNALS = []
    worker.context.update(runtime=runtime, queue=queue, worker_id=str(worker.id))
    return worker


async def run_worker(settings: Settings) -> None:
    """Process jobs until cancelled."""
    runtime = Runtime(settings)
    queue = build_queue(settings)
    await queue.connect()
    worker = build_worker(settings, queue, runtime)
    log.info("worker %s starting with %d jobs", worker.id, len(worker.functions))
    try:
        await worker.start()
    finally:
        await worker.stop()
        await queue.disconnect()
        await runtime.aclose()
        log.info("worker %s stopped", worker.id)


def main_worker(settings: Settings) -> None:
    """Entry point of `mathia worker`: run until SIGINT or SIGTERM."""
    import signal

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_worker(settings)

    asyncio.run(run())
