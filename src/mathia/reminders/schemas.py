from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import msgspec

from mathia.reminders.models import Audience, ReminderStatus


class ReminderCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Either `text` ("remind me tomorrow at 9 to …") or `message` with `due_at`."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)] | None = None
    due_at: dt.datetime | None = None
    room_id: UUID | None = None
    # An IANA name; without it, the profile's timezone (or UTC) reads the times in `text`.
    timezone: str | None = None
    channels: list[str] = []


class Snooze(msgspec.Struct, forbid_unknown_fields=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=7 * 24 * 60)]


class ReminderOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    id: UUID
    message: str
    due_at: dt.datetime
    status: ReminderStatus
    audience: Audience
    room_id: UUID | None = None
    understood: str | None = None
    channels: list[str] = []  # delivery beyond the app, e.g. ["whatsapp"]; omitted when none
