"""Imports every model module, so the metadata is complete for migrations and mappers."""

from mathia.actions import models as actions
from mathia.assistant import models as assistant
from mathia.auth import models as auth
from mathia.connectors import models as connectors
from mathia.memory import models as memory
from mathia.moderation import models as moderation
from mathia.reminders import models as reminders
from mathia.rooms import models as rooms
from mathia.tenants import models as tenants
from mathia.wallet import models as wallet

__all__ = [
    "actions",
    "assistant",
    "auth",
    "connectors",
    "memory",
    "moderation",
    "reminders",
    "rooms",
    "tenants",
    "wallet",
]
