"""The "whatsapp" reminder channel: a reminder that asks for it is also sent as a WhatsApp
text to the user's own number, through the WhatsApp connector when its workspace enabled it.
The core never imports the plugin: it calls the connector's action by name."""

from __future__ import annotations

import logging
import weakref

import msgspec
from sqlalchemy import select

from mathia.actions.router import execute, member_role
from mathia.connectors.delivery import GatewayDelivery
from mathia.connectors.services import ConnectorRuntime, build_runtime, get_config
from mathia.db import session_scope
from mathia.memory.models import UserProfile
from mathia.reminders.models import Reminder
from mathia.reminders.services import register_channel
from mathia.rooms.realtime import notify_user
from mathia.runtime import Runtime

log = logging.getLogger(__name__)

CONNECTOR = "whatsapp"
ACTION = "send_text"

# One connector runtime per process runtime (plugins are loaded once), dropped with it.
_connectors: weakref.WeakKeyDictionary[Runtime, ConnectorRuntime] = weakref.WeakKeyDictionary()


def connector_runtime(runtime: Runtime) -> ConnectorRuntime:
    if (connectors := _connectors.get(runtime)) is None:
        delivery = GatewayDelivery(runtime.redis, runtime.room_bus)
        connectors = _connectors[runtime] = build_runtime(
            runtime.settings, runtime.redis, runtime.http, delivery
        )
    return connectors


async def send(runtime: Runtime, reminder: Reminder) -> None:
    detail = await _send(runtime, reminder)
    if detail is None:
        return
    log.warning("reminder %s was not sent on WhatsApp: %s", reminder.id, detail)
    frame = {
        "type": "notification",
        "kind": "reminder.whatsapp_failed",
        "reminder_id": str(reminder.id),
        "detail": detail,
    }
    await notify_user(runtime.redis, reminder.user_id, frame)


async def _send(runtime: Runtime, reminder: Reminder) -> str | None:
    """Send the reminder; None when sent, else why not, in words for the user."""
    if reminder.tenant_id is None:
        return "this reminder belongs to no workspace, so no WhatsApp connector can send it"
    connectors = connector_runtime(runtime)
    connector = connectors.registry.connectors.get(CONNECTOR)
    action = connectors.registry.action(CONNECTOR, ACTION)
    async with session_scope(runtime.db) as session:
        config = await get_config(session, reminder.tenant_id, CONNECTOR)
        if connector is None or action is None or config is None or not config.enabled:
            return "the WhatsApp connector is not enabled in this reminder's workspace"
        number = await session.scalar(
            select(UserProfile.whatsapp).where(UserProfile.user_id == reminder.user_id)
        )
        if not number:
            return "your profile has no WhatsApp number"
        role = await member_role(session, reminder.tenant_id, reminder.user_id)
        if role is None or role.rank < action.min_role.rank:
            return "you may no longer send WhatsApp messages in this reminder's workspace"
        params = msgspec.convert({"to": number, "body": f"Reminder: {reminder.message}"}, action.params)
        # No approval step, unlike a chat request: the text goes to the user's own number, at
        # their own request. `execute` still applies the timeout and writes the audit row.
        outcome = await execute(
            connectors,
            session,
            reminder.tenant_id,
            reminder.user_id,
            role,
            reminder.room_id,
            connector,
            action,
            params,
        )
    return None if outcome.status == "ok" else outcome.text


register_channel(CONNECTOR, send)
