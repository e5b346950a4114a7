"""The assistant's note tools: "remember that …" and "forget …", for models (as tools) and for
the offline provider (as rules that turn those phrases into the same tool calls).

The assistant dispatches a call whose name `is_memory_tool` to `run_memory_tool`, in the room
and for the user the message came from."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.offline import Rule, new_call_id
from mathia.assistant.providers import ToolCall, ToolSpec
from mathia.errors import Forbidden, MathiaError
from mathia.memory import search, services
from mathia.memory.embeddings import Embedder
from mathia.memory.models import NotePriority
from mathia.memory.schemas import MAX_NOTE_CHARS
from mathia.memory.text import search_terms
from mathia.rooms.services import visible_room

REMEMBER = "memory__remember"
FORGET = "memory__forget"

MEMORY_TOOLS = [
    ToolSpec(
        REMEMBER,
        "Keep a note for this room when the user asks you to remember something. High-priority notes "
        "also follow the user into their other rooms of the workspace.",
        {
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": MAX_NOTE_CHARS},
                "priority": {"type": "string", "enum": [p.value for p in NotePriority]},
            },
            "required": ["text"],
        },
    ),
    ToolSpec(
        FORGET,
        "Delete the note that best matches the words given, when the user asks you to forget it.",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 500}},
            "required": ["query"],
        },
    ),
]

_MENTION = re.compile(r"^@\w+[,:]?\s*")
_REMEMBER = re.compile(
    r"^(?:please\s+)?(?P<always>always\s+)?(?:remember|note|keep in mind)(?:\s+that|\s*:)\s*(?P<text>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_FORGET = re.compile(
    r"^(?:please\s+)?forget(?:\s+(?:that|about|the note(?:\s+about)?))?\s+(?P<query>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_PRIORITY_TAG = re.compile(r"\s*[(\[]?\b(?P<level>high|low) priority\b[)\]]?\s*[.!]?$", re.IGNORECASE)


def is_memory_tool(name: str) -> bool:
    return name in (REMEMBER, FORGET)


def _message(text: str) -> str:
    return _MENTION.sub("", text.strip()).strip()


def remember_rule(text: str) -> ToolCall | None:
    """ "remember that X", "note: X", "always remember that X" (high priority), "… (low priority)"."""
    found = _REMEMBER.match(_message(text))
    if found is None:
        return None
    body = found.group("text").strip()
    priority = NotePriority.HIGH if found.group("always") else NotePriority.NORMAL
    if tag := _PRIORITY_TAG.search(body):
        priority = NotePriority(tag.group("level").lower())
        body = body[: tag.start()].strip()
    if not body:
        return None
    return ToolCall(id=new_call_id(), name=REMEMBER, arguments={"text": body, "priority": priority.value})


def forget_rule(text: str) -> ToolCall | None:
    """ "forget that X", "forget about X", "forget the note about X"."""
    found = _FORGET.match(_message(text))
    if found is None:
        return None
    return ToolCall(id=new_call_id(), name=FORGET, arguments={"query": found.group("query").strip(" .!?")})


NOTE_RULES: list[Rule] = [remember_rule, forget_rule]


async def run_memory_tool(
    session: AsyncSession,
    *,
    name: str,
    arguments: dict[str, Any],
    room_id: UUID,
    user_id: UUID,
    embedder: Embedder | None = None,
) -> str:
    """Carry out a note tool call for `user_id` in `room_id`; the answer is the tool result text."""
    try:
        if name == REMEMBER:
            priority = NotePriority(str(arguments.get("priority") or NotePriority.NORMAL))
            note = await services.create_note(
                session,
                room_id,
                user_id,
                str(arguments.get("text", "")),
                priority,
                by_assistant=True,
                embedder=embedder,
            )
            where = " I'll keep it in mind in your other rooms too." if priority == NotePriority.HIGH else ""
            return f"Noted: {note.body}{where}"
        if name == FORGET:
            return await _forget(session, str(arguments.get("query", "")), room_id, user_id)
    except ValueError:
        return "That priority is not one of low, normal or high."
    except MathiaError as exc:
        return str(exc.detail)
    raise ValueError(f"{name} is not a memory tool")


async def _forget(session: AsyncSession, query: str, room_id: UUID, user_id: UUID) -> str:
    terms = search_terms(query)
    if not terms:
        return "Tell me which note to forget, for example: forget that the launch moved."
    room, _ = await visible_room(session, room_id, user_id)
    # Every word must match: forgetting the wrong note is worse than asking again.
    where = search.visible_notes(room.tenant_id, room.id, user_id)
    notes = await search.full_text_notes(session, room.tenant_id, where, terms, match_all=True)
    if not notes:
        return f"I have no note about “{query}” here."
    note = notes[0]
    try:
        await services.delete_note(session, note.id, user_id)
    except Forbidden:
        return "Someone else wrote that note; they or a workspace admin can delete it."
    return f"Forgotten: {note.body}"
