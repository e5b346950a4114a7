from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base, TenantScoped


class ConnectorConfig(Base, TenantScoped):
    """One connector's state in one workspace. `credentials` is a Fernet token, never plain."""

    __table_args__ = (UniqueConstraint("tenant_id", "connector"),)

    connector: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool] = mapped_column(default=False)
    credentials: Mapped[str | None] = mapped_column(Text, default=None)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConnectorUserSecret(Base, TenantScoped):
    """A connector's secrets for one member (OAuth tokens), encrypted like credentials."""

    __table_args__ = (UniqueConstraint("tenant_id", "connector", "user_id"),)

    connector: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    secret: Mapped[str] = mapped_column(Text)
