from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.db import utcnow
from mathia.errors import InvalidInput
from mathia.jobs import queue_on
from mathia.reminders import services
from mathia.reminders.jobs import schedule
from mathia.reminders.models import Audience, Reminder, ReminderStatus
from mathia.reminders.parse import ReminderParseError, describe, parse_reminder
from mathia.reminders.schemas import ReminderCreate, ReminderOut, Snooze
from mathia.rooms.services import visible_room
from mathia.runtime import Runtime


def reminder_out(reminder: Reminder, understood: str | None = None) -> ReminderOut:
    return ReminderOut(
        id=reminder.id,
        message=reminder.message,
        due_at=reminder.due_at,
        status=ReminderStatus(reminder.status),
        audience=Audience(reminder.audience),
        room_id=reminder.room_id,
        understood=understood,
        channels=list(reminder.channels),
    )


class ReminderController(Controller):
    path = "/api/reminders"
    tags = ["reminders"]

    @post("/")
    async def create(
        self,
        data: JSONBody[ReminderCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> ReminderOut:
        if (data.text is None) == (data.message is None and data.due_at is None):
            raise InvalidInput("text: send either text, or message with due_at")
        try:
            tz = await services.user_timezone(db_session, current_user.id, data.timezone)
            if data.text is not None:
                parsed = parse_reminder(data.text, now=utcnow(), tz=tz)
                message, due_at, audience, understood = (
                    parsed.message,
                    parsed.due_at,
                    parsed.audience,
                    parsed.understood,
                )
                channels = list(dict.fromkeys([*data.channels, *parsed.channels]))
            else:
                if data.message is None or data.due_at is None:
                    raise InvalidInput("due_at: a message needs a due_at (RFC 3339 with an offset)")
                if data.due_at.tzinfo is None:
                    raise InvalidInput("due_at: give a UTC offset, e.g. 2026-03-04T17:00:00Z")
                message, due_at, audience, understood = (
                    data.message,
                    data.due_at,
                    Audience.ME,
                    describe(data.due_at, tz),
                )
                channels = data.channels
                if due_at <= utcnow():
                    raise ReminderParseError(f"{understood} has already passed")
        except ReminderParseError as exc:
            field = "timezone" if "timezone" in str(exc) else ("text" if data.text is not None else "due_at")
            raise InvalidInput(f"{field}: {exc}") from None
        if unknown := [name for name in channels if name not in services.CHANNELS]:
            known = ", ".join(sorted(services.CHANNELS)) or "none"
            raise InvalidInput(f"channels: no channel named {unknown[0]!r} (available: {known})")
        room = (await visible_room(db_session, data.room_id, current_user.id))[0] if data.room_id else None
        if audience == Audience.ROOM and room is None:
            raise InvalidInput("room_id: a reminder for the room needs the room's id")
        reminder = await services.create_reminder(
            db_session,
            user_id=current_user.id,
            message=message,
            due_at=due_at,
            room=room,
            audience=audience,
            channels=channels,
        )
        await db_session.commit()
        await schedule(queue_on(runtime.redis), reminder)
        return reminder_out(reminder, understood)

    @get("/")
    async def list_mine(
        self,
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[ReminderStatus | None] = None,
    ) -> list[ReminderOut]:
        return [reminder_out(r) for r in await services.list_reminders(db_session, current_user.id, status)]

    @delete("/{reminder_id:uuid}")
    async def cancel(
        self,
        reminder_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        await services.cancel(db_session, current_user.id, reminder_id)

    @post("/{reminder_id:uuid}/snooze", status_code=HTTP_200_OK)
    async def snooze(
        self,
        reminder_id: FromPath[UUID],
        data: JSONBody[Snooze],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> ReminderOut:
        reminder = await services.snooze(db_session, current_user.id, reminder_id, data.minutes)
        await db_session.commit()
        await schedule(queue_on(runtime.redis), reminder)
        return reminder_out(reminder)
