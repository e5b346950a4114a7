"""Request and response bodies for profiles, goals, notes and documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from mathia.memory.models import NotePriority

MAX_NOTE_CHARS = 2000
NoteBody = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTE_CHARS, pattern=r"\S")]
AnswerStyle = Literal["concise", "balanced", "detailed"]
FocusArea = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"\S")]


class ProfileIn(msgspec.Struct, forbid_unknown_fields=True):
    """Fields left out keep their value."""

    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")] | None = None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    locale: (
        Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", max_length=35)] | None
    ) = None
    role_title: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    # The user's own number in international format, as the WhatsApp connector takes it; "" clears it.
    whatsapp: Annotated[str, msgspec.Meta(pattern=r"^(\+?\d{7,15})?$")] | None = None


class ProfileOut(msgspec.Struct):
    display_name: str
    timezone: str
    locale: str
    role_title: str
    whatsapp: str


class Goals(msgspec.Struct, forbid_unknown_fields=True):
    """What the user wants to achieve; PUT replaces all of it."""

    summary: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    focus_areas: Annotated[list[FocusArea], msgspec.Meta(max_length=10)] = msgspec.field(default_factory=list)
    target_date: dt.date | None = None
    answer_style: AnswerStyle = "balanced"


class NoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    body: NoteBody
    priority: NotePriority = NotePriority.NORMAL


class NoteUpdate(msgspec.Struct, forbid_unknown_fields=True):
    body: NoteBody | None = None
    priority: NotePriority | None = None


class NoteOut(msgspec.Struct):
    id: UUID
    workspace_id: UUID
    room_id: UUID
    body: str
    priority: NotePriority
    author_id: UUID | None
    by_assistant: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class DocumentOut(msgspec.Struct):
    id: UUID
    workspace_id: UUID
    room_id: UUID | None
    name: str
    content_type: str
    size_bytes: int
    chunk_count: int
    uploaded_by: UUID | None
    created_at: dt.datetime
