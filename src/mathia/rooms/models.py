from __future__ import annotations

import enum
from uuid import UUID

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class SenderKind(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Room(Base, TenantScoped):
    name: Mapped[str] = mapped_column(String(100))
    private: Mapped[bool] = mapped_column(default=False)
    # The seq of the newest message; bumped under the row lock, so seq never repeats or skips.
    last_seq: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class RoomMember(Base, TenantScoped):
    __table_args__ = (UniqueConstraint("room_id", "user_id"),)

    room_id: Mapped[UUID] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)


class Message(Base, TenantScoped):
    __table_args__ = (
        UniqueConstraint("room_id", "seq"),
        # A client retrying a send with the same client_id gets the first message back.
        Index("ix_message_client_id", "room_id", "sender_id", "client_id", unique=True),
    )

    room_id: Mapped[UUID] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))
    seq: Mapped[int]
    sender_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    sender_kind: Mapped[SenderKind] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
