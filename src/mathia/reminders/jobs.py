from __future__ import annotations

import asyncio
import time
from uuid import UUID

from saq import Queue

from mathia.db import utcnow
from mathia.jobs import JobContext, cron, enqueue, every_seconds, task
from mathia.reminders import whatsapp  # noqa: F401  # registers the "whatsapp" channel in every worker
from mathia.reminders.models import Reminder
from mathia.reminders.services import EARLY_WAKE_SECONDS, deliver, due_reminders


@task(timeout=30)
async def deliver_reminder(ctx: JobContext, reminder_id: str, due: float) -> bool:
    # saq starts scheduled jobs on a one-second tick; the job is queued a little early and waits here.
    if (delay := due - time.time()) > 0:
        await asyncio.sleep(delay)
    return await deliver(ctx["runtime"], UUID(reminder_id))


@cron(lambda settings: every_seconds(settings.reminder_sweep_interval), timeout=120)
async def sweep_reminders(ctx: JobContext) -> int:
    """Deliver reminders that came due while no worker ran (or whose job was lost)."""
    runtime = ctx["runtime"]
    delivered = 0
    for reminder_id in await due_reminders(runtime, utcnow()):
        delivered += await deliver(runtime, reminder_id)
    return delivered


async def schedule(queue: Queue, reminder: Reminder) -> None:
    """Queue the delivery job of a stored (committed) reminder. The key includes the due time:
    a snoozed reminder gets a new job, and its old job finds nothing due and does nothing."""
    due = reminder.due_at.timestamp()
    await enqueue(
        queue,
        deliver_reminder,
        key=f"reminder:{reminder.id}:{int(due * 1000)}",
        scheduled=max(0, int(due) - EARLY_WAKE_SECONDS),
        reminder_id=str(reminder.id),
        due=due,
    )
