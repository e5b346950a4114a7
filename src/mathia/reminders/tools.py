"""The assistant's reminder tools: "@mathia remind me to call John in 10 mins", "what are my
reminders", "cancel the reminder about John", for models (as tools) and for the offline
provider (as rules that turn those phrases into the same tool calls).

The assistant dispatches a call whose name `is_reminder_tool` to `run_reminder_tool`, for the
user who asked and in the room they asked in. Answers go into that room, where other members
read them: listing and cancelling only ever see the asker's reminders of this room."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from saq import Queue
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.offline import Rule, new_call_id
from mathia.assistant.providers import ToolCall, ToolSpec
from mathia.db import utcnow
from mathia.reminders import services
from mathia.reminders.jobs import schedule
from mathia.reminders.models import Audience, Reminder
from mathia.reminders.parse import ReminderParseError, describe, parse_reminder
from mathia.rooms.models import Room
from mathia.rooms.services import MENTION

CREATE = "reminders__create"
LIST = "reminders__list"
CANCEL = "reminders__cancel"

REMINDER_TOOLS = [
    ToolSpec(
        CREATE,
        "Set a reminder when the user asks to be reminded of something. Pass their request in their "
        "own words, with the time phrase, e.g. 'remind me to call John in 10 minutes' or "
        "'remind us tomorrow at 9 to review the launch'; it is read in the user's timezone.",
        {
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 2000}},
            "required": ["text"],
        },
    ),
    ToolSpec(
        LIST, "List the user's pending reminders set in this room.", {"type": "object", "properties": {}}
    ),
    ToolSpec(
        CANCEL,
        "Cancel the user's pending reminder in this room whose text matches every word given.",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 500}},
            "required": ["query"],
        },
    ),
]

_REMIND = re.compile(r"^(?:please\s+)?remind\s+(?:me|us|the\s+room|everyone|the\s+team)\b", re.I)
_LIST = re.compile(
    r"^(?:what\s+are|show(?:\s+me)?|list)\s+(?:all\s+)?my\s+(?:pending\s+)?reminders\s*[?.!]*$", re.I
)
_CANCEL = re.compile(
    r"^(?:please\s+)?(?:cancel|delete|remove)\s+(?:the\s+|my\s+)?reminders?\s+(?:about|to|for|of)\s+(?P<query>.+)$",
    re.I | re.DOTALL,
)
_WORD = re.compile(r"\w+")


def is_reminder_tool(name: str) -> bool:
    return name in (CREATE, LIST, CANCEL)


def _request(text: str) -> str:
    """What was said to the assistant: the text after the last @mathia. The offline provider sees
    the conversation's last user turn, which starts with the sender's name and may hold several
    messages."""
    mentions = list(MENTION.finditer(text))
    return (text[mentions[-1].end() :] if mentions else text).strip(" \t\n,:")


def remind_rule(text: str) -> ToolCall | None:
    request = _request(text)
    if _REMIND.match(request) is None:
        return None
    return ToolCall(id=new_call_id(), name=CREATE, arguments={"text": request})


def list_rule(text: str) -> ToolCall | None:
    if _LIST.match(_request(text)) is None:
        return None
    return ToolCall(id=new_call_id(), name=LIST, arguments={})


def cancel_rule(text: str) -> ToolCall | None:
    found = _CANCEL.match(_request(text))
    if found is None:
        return None
    return ToolCall(id=new_call_id(), name=CANCEL, arguments={"query": found["query"].strip(" .!?")})


REMINDER_RULES: list[Rule] = [remind_rule, list_rule, cancel_rule]


async def run_reminder_tool(
    session: AsyncSession,
    queue: Queue,
    *,
    name: str,
    arguments: dict[str, Any],
    room: Room,
    user_id: UUID,
) -> str:
    """Carry out a reminder tool call for `user_id` in `room`; the answer is the tool result text."""
    if name == CREATE:
        return await _create(session, queue, str(arguments.get("text", "")), room, user_id)
    pending = await services.pending_in_room(session, user_id, room.id)
    if name == LIST:
        if not pending:
            return "You have no pending reminders in this room."
        tz = await services.user_timezone(session, user_id)
        return "Your pending reminders here:\n" + "\n".join(
            f"- {r.message}: {describe(r.due_at, tz)}" for r in pending
        )
    if name == CANCEL:
        return await _cancel(session, str(arguments.get("query", "")), pending, user_id)
    raise ValueError(f"{name} is not a reminder tool")


async def _create(session: AsyncSession, queue: Queue, text: str, room: Room, user_id: UUID) -> str:
    tz = await services.user_timezone(session, user_id)
    try:
        parsed = parse_reminder(text, now=utcnow(), tz=tz)
    except ReminderParseError as exc:
        return f"I could not set that reminder: {exc}."
    reminder = await services.create_reminder(
        session,
        user_id=user_id,
        message=parsed.message,
        due_at=parsed.due_at,
        room=room,
        audience=parsed.audience,
        channels=list(parsed.channels),
    )
    # Committed before it is queued, so the job never wakes to a row it cannot see yet.
    await session.commit()
    await schedule(queue, reminder)
    who = "the room" if parsed.audience == Audience.ROOM else "you"
    also = " (here and on your WhatsApp)" if "whatsapp" in parsed.channels else ""
    return f"OK, I will remind {who} to {parsed.message} on {parsed.understood}{also}."


async def _cancel(session: AsyncSession, query: str, pending: list[Reminder], user_id: UUID) -> str:
    terms = {word.lower() for word in _WORD.findall(query)}
    if not terms:
        return "Tell me which reminder to cancel, for example: cancel the reminder about John."
    # Every word must match: cancelling the wrong reminder is worse than asking again.
    matches = [r for r in pending if terms <= {w.lower() for w in _WORD.findall(r.message)}]
    if not matches:
        return f"You have no pending reminder about “{query}” in this room."
    if len(matches) > 1:
        return f"Several reminders match “{query}”: " + "; ".join(r.message for r in matches) + ". Which one?"
    await services.cancel(session, user_id, matches[0].id)
    return f"Cancelled the reminder to {matches[0].message}."
