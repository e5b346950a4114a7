"""Database: declarative base, engine configuration and migrations."""

from mathia.db.base import Base, TenantScoped, utcnow
from mathia.db.engine import database_config, session_scope

__all__ = ["Base", "TenantScoped", "database_config", "session_scope", "utcnow"]
