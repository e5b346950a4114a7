"""Reminders delivered by real saq workers on PostgreSQL and Redis."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.config import Settings
from mathia.db import utcnow
from mathia.jobs import build_queue, enqueue
from mathia.reminders.jobs import deliver_reminder, schedule
from mathia.reminders.models import Reminder, ReminderStatus
from mathia.reminders.services import create_reminder
from mathia.rooms.models import Message
from mathia.rooms.realtime import room_channel, user_channel
from tests.reminders.world import (
    World,
    eventually,
    frames,
    make_world,
    running_worker,
    session_on,
    worker_settings,
)


@pytest.fixture
async def settings(postgres_url: str, redis_url: str) -> AsyncIterator[Settings]:
    settings = worker_settings(postgres_url, redis_url, reminder_sweep_interval=30)
    client = Redis.from_url(str(settings.redis_url))
    await client.flushdb()
    yield settings
    await client.aclose()


@pytest.fixture
async def pg(settings: Settings) -> AsyncIterator[AsyncSession]:
    async with session_on(settings) as session:
        yield session


async def room_reminder_messages(session: AsyncSession, world: World) -> Counter[str]:
    rows = await session.scalars(select(Message.body).where(Message.room_id == world.room.id))
    return Counter(body for body in rows if body.startswith("Reminder"))


async def test_reminder_due_while_no_worker_ran_is_delivered_once_at_start(
    settings: Settings, pg: AsyncSession, redis: Redis
) -> None:
    world = await make_world(pg)
    user = world.members[0]
    # Came due a minute ago, and no job was ever queued for it: as after downtime with a lost queue.
    reminder = await create_reminder(
        pg,
        user_id=user.id,
        message="water the plants",
        due_at=utcnow() - dt.timedelta(minutes=1),
        room=world.room,
    )
    await pg.commit()

    async with frames(redis, user_channel(user.id), room_channel(world.room.id)) as received:
        async with running_worker(settings):

            async def delivered() -> bool:
                await pg.refresh(reminder)
                return reminder.status == ReminderStatus.DELIVERED

            await eventually(delivered)
            await eventually(lambda: _true_when(len(received) >= 2))
        assert reminder.delivered_at is not None and reminder.delivered_at > reminder.due_at
        assert await room_reminder_messages(pg, world) == {"Reminder: water the plants": 1}
        kinds = Counter(f.get("kind") or f["type"] for f in received)
        assert kinds == {"reminder": 1, "message.new": 1}
        note = next(f for f in received if f.get("kind") == "reminder")
        assert note["reminder_id"] == str(reminder.id) and note["message"] == "water the plants"


async def _true_when(value: bool) -> bool:
    return value


async def test_two_workers_never_deliver_one_reminder_twice(
    settings: Settings, pg: AsyncSession, redis: Redis
) -> None:
    world = await make_world(pg)
    user = world.members[0]
    due = utcnow() + dt.timedelta(seconds=3)
    reminders = [
        await create_reminder(pg, user_id=user.id, message=f"task {i}", due_at=due, room=world.room)
        for i in range(30)
    ]
    await pg.commit()
    ids = [r.id for r in reminders]
    queue = build_queue(settings)
    for reminder in reminders:
        await schedule(queue, reminder)
        # A second job for the same reminder, as a retry or a re-schedule would make: both workers race.
        await enqueue(
            queue,
            deliver_reminder,
            key=f"extra:{reminder.id}",
            reminder_id=str(reminder.id),
            due=reminder.due_at.timestamp(),
        )
    await queue.disconnect()

    async with frames(redis, user_channel(user.id)) as received:
        async with running_worker(settings), running_worker(settings):

            async def all_delivered() -> bool:
                count = await pg.scalar(
                    select(func.count())
                    .select_from(Reminder)
                    .where(
                        Reminder.id.in_(ids),
                        Reminder.status == ReminderStatus.DELIVERED,
                    )
                )
                return count == len(reminders)

            await eventually(all_delivered, within=30)
            await eventually(lambda: _true_when(len(received) >= len(reminders)))
        messages = await room_reminder_messages(pg, world)
    assert messages == {f"Reminder: task {i}": 1 for i in range(30)}
    assert Counter(f["reminder_id"] for f in received) == {str(r.id): 1 for r in reminders}
    for reminder in reminders:
        await pg.refresh(reminder)
        assert reminder.delivered_at is not None
        assert reminder.delivered_at >= reminder.due_at  # never early
