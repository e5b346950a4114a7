from __future__ import annotations

import datetime as dt
import enum
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class FlagState(enum.StrEnum):
    ACTIVE = "active"  # counts towards the next mute
    ACTIONED = "actioned"  # led to a mute
    PARDONED = "pardoned"  # an admin forgave it


class ModerationFlag(Base, TenantScoped):
    """A message judged abusive. One row per message at most: that is what keeps a
    message classified twice (after a worker died) from being counted twice."""

    __tablename__ = "moderation_flag"
    __table_args__ = (Index("ix_moderation_flag_user_state", "tenant_id", "user_id", "state"),)

    message_id: Mapped[UUID] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), unique=True)
    room_id: Mapped[UUID] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    state: Mapped[FlagState] = mapped_column(String(16), default=FlagState.ACTIVE)


class ModerationMute(Base, TenantScoped):
    """A user's mute in one workspace; `until` None or past means not muted."""

    __tablename__ = "moderation_mute"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    until: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ModerationPolicy(Base, TenantScoped):
    """A workspace's own moderation settings; without a row, the defaults from Settings apply."""

    __tablename__ = "moderation_policy"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    flag_limit: Mapped[int]
    mute_seconds: Mapped[int]
