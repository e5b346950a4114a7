"""Reminder delivery lateness: 1,000 reminders due within one minute, two worker processes.

    uv run python bench/reminders.py [--reminders 1000] [--spread 60] [--workers 2]

Creates a scratch database next to MATHIA_BENCH_POSTGRES (default: the local test server)
and uses Redis database 13 of MATHIA_BENCH_REDIS (flushed). Starts `python -m mathia worker`
processes, stores and schedules the reminders (spread evenly over `--spread` seconds, the
first a few seconds after scheduling ends), listens to every user's notification channel as
a web process would, and prints how late each reminder reached its user (p50/p99/max),
early deliveries and duplicates (both must be 0). Drops the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from uuid import UUID

import asyncpg
import msgspec
from redis.asyncio import Redis
from sqlalchemy import func, select

from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import database_config, session_scope
from mathia.db.migrations import upgrade
from mathia.jobs import build_queue, registry
from mathia.reminders.jobs import schedule
from mathia.reminders.models import Reminder, ReminderStatus
from mathia.reminders.services import create_reminder
from mathia.rooms.models import Message, Room, RoomMember
from mathia.tenants.models import Membership, Role, Workspace

SERVER = os.environ.get("MATHIA_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MATHIA_BENCH_REDIS", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/13"
SECRET_KEY = secrets.token_urlsafe(32)  # the workers' and this process's, which must agree
USERS = 50  # reminders are spread over this many people, each in a room of their own
LEAD_SECONDS = 5.0  # from the end of scheduling to the first due time


@contextmanager
def scratch_database() -> Iterator[str]:
    """A migrated PostgreSQL database for one run, dropped afterwards (bench/moderation.py uses it too)."""

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(SERVER.replace("+asyncpg", ""))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    name = f"mathia_bench_{secrets.token_hex(4)}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = SERVER.rsplit("/", 1)[0] + f"/{name}"
        upgrade(Settings.from_env({}, database_url=url, secret_key=SECRET_KEY))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def people_and_rooms(settings: Settings, count: int) -> list[tuple[UUID, Room]]:
    config = database_config(settings)
    async with session_scope(config) as session:
        owner = User(email="owner@bench.example", display_name="Owner", password_hash="x")
        session.add(owner)
        await session.flush()
        workspace = Workspace(name="bench", created_by=owner.id)
        session.add(workspace)
        await session.flush()
        pairs = []
        for i in range(count):
            user = User(email=f"u{i}@bench.example", display_name=f"U{i}", password_hash="x")
            session.add(user)
            await session.flush()
            room = Room(tenant_id=workspace.id, name=f"room-{i}", private=True, created_by=user.id)
            session.add_all([Membership(tenant_id=workspace.id, user_id=user.id, role=Role.MEMBER), room])
            await session.flush()
            session.add(RoomMember(tenant_id=workspace.id, room_id=room.id, user_id=user.id))
            pairs.append((user.id, room))
    await config.get_engine().dispose()
    return pairs


@asynccontextmanager
async def workers(settings: Settings, count: int) -> AsyncIterator[None]:
    env = {**os.environ, "DATABASE_URL": str(settings.database_url), "REDIS_URL": REDIS}
    env["MATHIA_SECRET_KEY"] = SECRET_KEY
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", "mathia", "worker", env=env)
        for _ in range(count)
    ]
    try:
        redis = Redis.from_url(REDIS)
        # saq workers announce themselves under saq:mathia:worker_info:* once they run.
        while len(await redis.keys("saq:mathia:worker_info:*")) < count:  # noqa: ASYNC110 (polls Redis)
            await asyncio.sleep(0.2)
        await redis.aclose()
        yield
    finally:
        for process in processes:
            process.terminate()
        await asyncio.gather(*(p.wait() for p in processes))


async def listen(
    redis: Redis, channels: list[str], arrivals: list[tuple[str, float]], expected: int, all_in: asyncio.Event
) -> None:
    seen: set[str] = set()
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(*channels)
        async for item in pubsub.listen():
            if item["type"] == "message":
                frame = msgspec.json.decode(item["data"])
                if frame.get("kind") == "reminder":
                    arrivals.append((frame["reminder_id"], time.time()))
                    seen.add(frame["reminder_id"])
                    if len(seen) == expected:
                        all_in.set()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


async def bench(url: str, count: int, spread: float, worker_count: int) -> None:
    settings = Settings.from_env({}, database_url=url, redis_url=REDIS, secret_key=SECRET_KEY)
    redis = Redis.from_url(REDIS)
    await redis.flushdb()
    pairs = await people_and_rooms(settings, USERS)
    arrivals: list[tuple[str, float]] = []
    all_in = asyncio.Event()
    channels = [f"user:{user}" for user, _ in pairs]
    listener = asyncio.create_task(listen(redis, channels, arrivals, count, all_in))
    config = database_config(settings)
    async with workers(settings, worker_count):
        registry()  # imports every job module now, not inside the timed scheduling
        started = time.perf_counter()
        # Scheduling 1,000 takes a few seconds on a loaded machine: due times start after it ends,
        # from an estimate refined below.
        first_due = time.time() + LEAD_SECONDS + count / 250
        queue = build_queue(settings)
        due_of: dict[str, float] = {}
        async with session_scope(config) as session:
            reminders = []
            for i in range(count):
                user, room = pairs[i % len(pairs)]
                due = first_due + spread * i / count
                reminders.append(
                    await create_reminder(
                        session,
                        user_id=user,
                        message=f"bench {i}",
                        due_at=dt.datetime.fromtimestamp(due, dt.UTC),
                        room=room,
                    )
                )
        stored_at = time.perf_counter()
        for reminder in reminders:
            await schedule(queue, reminder)
            due_of[str(reminder.id)] = reminder.due_at.timestamp()
        await queue.disconnect()
        scheduled_in = time.perf_counter() - started
        stored_in = stored_at - started
        print(
            f"stored {count} reminders in {stored_in:.1f} s and scheduled them by {scheduled_in:.1f} s; "
            f"first due {first_due - time.time():.1f} s later, last {spread:.0f} s after that"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), timeout=first_due - time.time() + spread + 60)
        await asyncio.sleep(2)  # any duplicate would arrive within this
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)

    async with session_scope(config) as session:
        delivered = await session.scalar(
            select(func.count()).select_from(Reminder).where(Reminder.status == ReminderStatus.DELIVERED)
        )
        room_messages = await session.scalar(
            select(func.count()).select_from(Message).where(Message.body.startswith("Reminder: bench"))
        )
        claim_lateness = [
            (r.delivered_at - r.due_at).total_seconds()
            for r in await session.scalars(select(Reminder).where(Reminder.delivered_at.is_not(None)))
        ]
    await config.get_engine().dispose()
    await redis.aclose()

    per_reminder = Counter(rid for rid, _ in arrivals)
    first_arrival: dict[str, float] = {}
    for rid, at in arrivals:
        first_arrival.setdefault(rid, at)
    lateness = [first_arrival[rid] - due_of[rid] for rid in first_arrival]
    print(f"workers: {worker_count} processes; reminders: {count} due over {spread:.0f} s")
    print(
        f"delivered (rows): {delivered}; notifications received for {len(first_arrival)}; "
        f"room messages: {room_messages}"
    )
    print(
        f"duplicates: notifications {sum(n - 1 for n in per_reminder.values())}, "
        f"room messages {(room_messages or 0) - (delivered or 0)}"
    )
    print(f"early: {sum(1 for x in lateness if x < 0)} (min lateness {min(lateness):+.3f} s)")
    for name, values in (("notification", lateness), ("claim", claim_lateness)):
        print(
            f"{name} lateness: p50 {percentile(values, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reminders", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with scratch_database() as url:
        asyncio.run(bench(url, args.reminders, args.spread, args.workers))


if __name__ == "__main__":
    main()
