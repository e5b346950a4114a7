"""Memory rows: the user's profile and goals, room notes, documents and their chunks.

Full-text search columns live outside the ORM: a generated `tsvector` column on
PostgreSQL and FTS5 shadow tables on SQLite, both made by the "memory" migration
branch. An `embedding` column exists only when PostgreSQL has pgvector.
"""

from __future__ import annotations

import datetime as dt
import enum
from uuid import UUID

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class UserProfile(Base):
    """Onboarding facts about a user; the display name itself stays on the user account."""

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(35), default="en")
    role_title: Mapped[str] = mapped_column(String(100), default="")
    # The user's own WhatsApp number, for reminders they ask to get there; "" when unset.
    whatsapp: Mapped[str] = mapped_column(String(16), default="", server_default="")


class UserGoals(Base):
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    focus_areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_date: Mapped[dt.date | None] = mapped_column(default=None)
    answer_style: Mapped[str] = mapped_column(String(16), default="balanced")


class NotePriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Note(Base, TenantScoped):
    """A fact kept for a room. A high-priority note follows its author into the author's
    other rooms of the workspace, unless it was written in a private room."""

    __table_args__ = (Index("ix_note_tenant_room", "tenant_id", "room_id"),)

    room_id: Mapped[UUID] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))
    author_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    priority: Mapped[NotePriority] = mapped_column(String(8), default=NotePriority.NORMAL)
    by_assistant: Mapped[bool] = mapped_column(default=False)


class Document(Base, TenantScoped):
    """Knowledge uploaded to a room, or to the whole workspace when `room_id` is None."""

    __table_args__ = (Index("ix_document_tenant_room", "tenant_id", "room_id"),)

    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"), default=None)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(default=0)
    uploaded_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class DocumentChunk(Base, TenantScoped):
    # room_id is copied from the document so retrieval filters in one indexed step.
    __table_args__ = (Index("ix_document_chunk_tenant_room", "tenant_id", "room_id"),)

    document_id: Mapped[UUID] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"), default=None)
    ordinal: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int]
    # Where in the document: the Markdown heading or the PDF page, shown with the source name.
    section: Mapped[str] = mapped_column(String(255), default="")
