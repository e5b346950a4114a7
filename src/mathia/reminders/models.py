from __future__ import annotations

import datetime as dt
import enum
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Audience(enum.StrEnum):
    ME = "me"
    ROOM = "room"


class Reminder(Base):
    """A reminder is this row first; the queued job only wakes a worker at `due_at`.
    It belongs to its user; `tenant_id` is set when it is tied to a room."""

    __tablename__ = "reminder"
    # The sweep's query: pending reminders by due time.
    __table_args__ = (Index("ix_reminder_status_due", "status", "due_at"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), default=None
    )
    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"), default=None)
    message: Mapped[str] = mapped_column(Text)
    due_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    audience: Mapped[Audience] = mapped_column(String(8), default=Audience.ME)
    status: Mapped[ReminderStatus] = mapped_column(String(16), default=ReminderStatus.PENDING)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Extra delivery channels the user asked for (e.g. "whatsapp"); see delivery.CHANNELS.
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
