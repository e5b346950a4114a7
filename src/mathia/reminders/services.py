"""Reminders: a row first, a queued job to wake a worker at the due time, and a sweep
for whatever a crash or downtime left behind. Delivery claims the row with one
conditional UPDATE, so of all the workers and sweeps that try, exactly one delivers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.db import session_scope, utcnow
from mathia.errors import Conflict, NotFound
from mathia.memory.models import UserProfile
from mathia.reminders.models import Audience, Reminder, ReminderStatus
from mathia.reminders.parse import ReminderParseError, zone
from mathia.rooms.models import Room, SenderKind
from mathia.rooms.realtime import notify_user
from mathia.rooms.services import message_out, post_message
from mathia.runtime import Runtime

log = logging.getLogger(__name__)

# The queued job wakes this much before the due time and sleeps the rest, so saq's
# one-second scheduling tick does not add to the lateness.
EARLY_WAKE_SECONDS = 2
# The sweep leaves recently due reminders to their own jobs.
SWEEP_GRACE = dt.timedelta(seconds=5)
SWEEP_LIMIT = 500

ReminderChannel = Callable[[Runtime, Reminder], Awaitable[None]]
# Extra delivery channels by name, filled in by connectors: the WhatsApp connector registers
# "whatsapp" here with `register_channel`, and a reminder whose `channels` lists it is also
# sent that way. They run after the delivery committed: at most once, failures are logged.
CHANNELS: dict[str, ReminderChannel] = {}


def register_channel(name: str, send: ReminderChannel) -> None:
    CHANNELS[name] = send


async def user_timezone(session: AsyncSession, user_id: UUID, requested: str | None = None) -> ZoneInfo:
    """The timezone to read a user's times in: the one the request names, else the profile's, else UTC."""
    if requested:
        return zone(requested)
    name = await session.scalar(select(UserProfile.timezone).where(UserProfile.user_id == user_id))
    try:
        return zone(name) if name else ZoneInfo("UTC")
    except ReminderParseError:
        log.warning("user %s has an unknown timezone %r in their profile; using UTC", user_id, name)
        return ZoneInfo("UTC")


async def create_reminder(
    session: AsyncSession,
    *,
    user_id: UUID,
    message: str,
    due_at: dt.datetime,
    room: Room | None = None,
    audience: Audience = Audience.ME,
    channels: list[str] | None = None,
) -> Reminder:
    """Store a reminder; call `jobs.schedule` with it once the transaction committed."""
    reminder = Reminder(
        user_id=user_id,
        message=message,
        due_at=due_at.astimezone(dt.UTC),
        audience=audience,
        room_id=room.id if room else None,
        tenant_id=room.tenant_id if room else None,
        channels=channels or [],
    )
    session.add(reminder)
    await session.flush()
    log.info("reminder %s for user %s due %s", reminder.id, user_id, reminder.due_at.isoformat())
    return reminder


async def caller_reminder(session: AsyncSession, user_id: UUID, reminder_id: UUID) -> Reminder:
    reminder = await session.scalar(
        select(Reminder).where(Reminder.id == reminder_id, Reminder.user_id == user_id)
    )
    if reminder is None:
        raise NotFound("reminder not found")
    return reminder


async def claim(session: AsyncSession, reminder_id: UUID, now: dt.datetime) -> Reminder | None:
    """Mark the reminder delivered if it is pending and due; None when another run got it first,
    it was cancelled, or it was snoozed to later. Holds the row lock until commit."""
    statement = (
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
        .values(status=ReminderStatus.DELIVERED, delivered_at=now, updated_at=now)
        .returning(Reminder)
    )
    return (await session.execute(statement)).scalar_one_or_none()


def notification_frame(reminder: Reminder) -> dict[str, Any]:
    return {
        "type": "notification",
        "kind": "reminder",
        "reminder_id": str(reminder.id),
        "message": reminder.message,
        "due_at": reminder.due_at.isoformat(),
        "room_id": str(reminder.room_id) if reminder.room_id else None,
    }


async def deliver(runtime: Runtime, reminder_id: UUID) -> bool:
    """Deliver one reminder if it is still due and nobody delivered it; True if this call did.

    The claim and the room message commit together: a crash before the commit leaves the
    reminder pending for the sweep, after it the reminder is in the room for good."""
    async with session_scope(runtime.db) as session:
        reminder = await claim(session, reminder_id, utcnow())
        if reminder is None:
            return False
        posted = None
        if reminder.room_id is not None:
            room = await session.get_one(Room, reminder.room_id)
            prefix = "Reminder for the room" if reminder.audience == Audience.ROOM else "Reminder"
            posted = await post_message(
                session, room=room, body=f"{prefix}: {reminder.message}", sender_kind=SenderKind.ASSISTANT
            )
    lateness = (reminder.delivered_at or reminder.due_at) - reminder.due_at
    log.info("reminder %s delivered %.3f s after its due time", reminder.id, lateness.total_seconds())
    if posted is not None:
        await runtime.room_bus.publish(
            posted.room_id, {"type": "message.new", "message": message_out(posted, None)}
        )
    await notify_user(runtime.redis, reminder.user_id, notification_frame(reminder))
    for name in reminder.channels:
        send = CHANNELS.get(name)
        if send is None:
            log.warning("reminder %s asked for channel %r, which no connector provides", reminder.id, name)
            continue
        try:
            await send(runtime, reminder)
        except Exception:
            log.exception("reminder %s: sending through %s failed", reminder.id, name)
    return True


async def due_reminders(runtime: Runtime, now: dt.datetime) -> list[UUID]:
    async with session_scope(runtime.db) as session:
        rows = await session.scalars(
            select(Reminder.id)
            .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now - SWEEP_GRACE)
            .order_by(Reminder.due_at)
            .limit(SWEEP_LIMIT)
        )
        return list(rows)


async def cancel(session: AsyncSession, user_id: UUID, reminder_id: UUID) -> Reminder:
    reminder = await caller_reminder(session, user_id, reminder_id)
    if reminder.status == ReminderStatus.DELIVERED:
        raise Conflict("reminder was already delivered")
    reminder.status = ReminderStatus.CANCELLED
    await session.flush()
    log.info("reminder %s cancelled by its user", reminder.id)
    return reminder


async def snooze(session: AsyncSession, user_id: UUID, reminder_id: UUID, minutes: int) -> Reminder:
    """Due again `minutes` from now, whether it was pending or already delivered."""
    reminder = await caller_reminder(session, user_id, reminder_id)
    if reminder.status == ReminderStatus.CANCELLED:
        raise Conflict("reminder was cancelled")
    reminder.due_at = utcnow() + dt.timedelta(minutes=minutes)
    reminder.status, reminder.delivered_at = ReminderStatus.PENDING, None
    await session.flush()
    log.info("reminder %s snoozed to %s", reminder.id, reminder.due_at.isoformat())
    return reminder


async def list_reminders(
    session: AsyncSession, user_id: UUID, status: ReminderStatus | None
) -> list[Reminder]:
    query = select(Reminder).where(Reminder.user_id == user_id)
    if status is not None:
        query = query.where(Reminder.status == status)
    return list(await session.scalars(query.order_by(Reminder.due_at)))


async def pending_in_room(session: AsyncSession, user_id: UUID, room_id: UUID) -> list[Reminder]:
    """The user's pending reminders set in one room (what the assistant may talk about there)."""
    query = select(Reminder).where(
        Reminder.user_id == user_id, Reminder.room_id == room_id, Reminder.status == ReminderStatus.PENDING
    )
    return list(await session.scalars(query.order_by(Reminder.due_at)))
