"""Shared model pieces. Every model derives from `Base` (UUID primary key,
`created_at`/`updated_at` in UTC); rows that belong to a workspace add `TenantScoped`."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from advanced_alchemy.base import UUIDAuditBase
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

Base = UUIDAuditBase


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TenantScoped:
    """The row belongs to one workspace; services filter every read by it."""

    @declared_attr
    def tenant_id(cls) -> Mapped[UUID]:
        return mapped_column(ForeignKey("workspace.id", ondelete="CASCADE"), index=True)
