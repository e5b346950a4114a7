from __future__ import annotations

import datetime as dt
import enum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class ActionAudit(Base, TenantScoped):
    """One attempted action: who, what, with which (masked) parameters, and how it went."""

    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    connector: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(default=0)
    approval_id: Mapped[UUID | None] = mapped_column(default=None)


class ApprovalStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Approval(Base, TenantScoped):
    """An action waiting for an owner or admin. It runs with the requester's identity once approved."""

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="SET NULL"), default=None)
    connector: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[ApprovalStatus] = mapped_column(String(16), default=ApprovalStatus.PENDING, index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    decided_by: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    result: Mapped[str | None] = mapped_column(Text, default=None)


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class Task(Base, TenantScoped):
    title: Mapped[str] = mapped_column(String(300))
    assignee_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="SET NULL"), default=None)
    status: Mapped[TaskStatus] = mapped_column(String(16), default=TaskStatus.OPEN)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
