from __future__ import annotations

import datetime as dt
import enum
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    GUEST = "guest"

    @property
    def is_admin(self) -> bool:
        return self in (Role.OWNER, Role.ADMIN)


class Workspace(Base):
    name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))


class Membership(Base, TenantScoped):
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(String(16))


class Invite(Base, TenantScoped):
    code: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(String(16))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    created_by: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
