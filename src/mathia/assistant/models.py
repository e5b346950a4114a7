from __future__ import annotations

from uuid import UUID

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class AIUsage(Base, TenantScoped):
    """One model call: who asked, where, which model answered, and what it cost in tokens and time."""

    __tablename__ = "ai_usage"
    __table_args__ = (Index("ix_ai_usage_tenant_created", "tenant_id", "created_at"),)

    # Kept when the user, room or message goes: the workspace still used the tokens.
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    room_id: Mapped[UUID | None] = mapped_column(ForeignKey("room.id", ondelete="SET NULL"))
    message_id: Mapped[UUID | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    latency_ms: Mapped[int]
