"""The assistant's note tools and the offline rules that produce them, and the user context text."""

from __future__ import annotations

import datetime as dt

import pytest

from mathia.memory import profiles, services
from mathia.memory.models import NotePriority
from mathia.memory.schemas import Goals, ProfileIn
from mathia.memory.tools import FORGET, NOTE_RULES, REMEMBER, forget_rule, remember_rule, run_memory_tool
from mathia.tenants.models import Role
from tests.memory.conftest import Seed


@pytest.mark.parametrize(
    ("text", "body", "priority"),
    [
        ("@mathia remember that the launch moved to May 3", "the launch moved to May 3", "normal"),
        (
            "@mathia, please remember: the wifi password is on the fridge",
            "the wifi password is on the fridge",
            "normal",
        ),
        ("always remember that I prefer metric units", "I prefer metric units", "high"),
        ("note that the client is called Initech (low priority)", "the client is called Initech", "low"),
        ("Keep in mind that Bob is on leave (high priority).", "Bob is on leave", "high"),
    ],
)
def test_remember_phrases(text: str, body: str, priority: str) -> None:
    call = remember_rule(text)
    assert call is not None and call.name == REMEMBER
    assert call.arguments == {"text": body, "priority": priority}


def test_forget_phrases_and_non_matches() -> None:
    for text, query in [
        ("@mathia forget that the launch moved", "the launch moved"),
        ("forget about the wifi password.", "the wifi password"),
        ("please forget the note about Bob's leave", "Bob's leave"),
    ]:
        call = forget_rule(text)
        assert call is not None and call.name == FORGET and call.arguments == {"query": query}
    for text in ("remember to buy milk", "don't forget the meeting", "what do you remember?", "hello"):
        assert all(rule(text) is None for rule in NOTE_RULES), text


async def test_remember_then_forget_through_the_tools(seed: Seed) -> None:
    ada, bob = await seed.user("Ada"), await seed.user("Bob")
    workspace = await seed.workspace(ada)
    await seed.join_workspace(workspace, bob)
    room = await seed.room(workspace, ada)
    await seed.join_room(room, bob)

    call = remember_rule("@mathia always remember that the launch moved to May 3")
    assert call is not None
    reply = await run_memory_tool(
        seed.session, name=call.name, arguments=call.arguments, room_id=room.id, user_id=bob.id
    )
    assert reply.startswith("Noted: the launch moved to May 3") and "other rooms" in reply
    [note] = await services.list_notes(seed.session, room.id, bob.id)
    assert note.by_assistant and note.priority == NotePriority.HIGH and note.author_id == bob.id

    # Every word must match before anything is deleted.
    miss = await run_memory_tool(
        seed.session,
        name=FORGET,
        arguments={"query": "launch moved to June"},
        room_id=room.id,
        user_id=bob.id,
    )
    assert "no note" in miss and len(await services.list_notes(seed.session, room.id, bob.id)) == 1
    await seed.join_workspace(workspace, guest := await seed.user("Gus"), Role.GUEST)
    await seed.join_room(room, guest)
    refused = await run_memory_tool(
        seed.session, name=FORGET, arguments={"query": "launch moved"}, room_id=room.id, user_id=guest.id
    )
    assert "Someone else" in refused and len(await services.list_notes(seed.session, room.id, bob.id)) == 1
    done = await run_memory_tool(
        seed.session, name=FORGET, arguments={"query": "the launch moved"}, room_id=room.id, user_id=bob.id
    )
    assert done == "Forgotten: the launch moved to May 3"
    assert await services.list_notes(seed.session, room.id, bob.id) == []
    # A guest cannot write notes; the tool says so instead of failing.
    denied = await run_memory_tool(
        seed.session, name=REMEMBER, arguments={"text": "x"}, room_id=room.id, user_id=guest.id
    )
    assert "role" in denied


async def test_user_context_and_timezone(seed: Seed) -> None:
    ada = await seed.user("Ada")
    assert await profiles.user_timezone(seed.session, ada.id) == "UTC"
    await profiles.put_profile(
        seed.session, ada, ProfileIn(timezone="Asia/Tokyo", locale="ja", role_title="Product manager")
    )
    await profiles.put_goals(
        seed.session,
        ada.id,
        Goals(
            summary="Ship the mobile app",
            focus_areas=["mobile"],
            target_date=dt.date(2027, 1, 15),
            answer_style="concise",
        ),
    )
    assert await profiles.user_timezone(seed.session, ada.id) == "Asia/Tokyo"
    text = await profiles.user_context(
        seed.session, ada.id, now=dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
    )
    for part in (
        "Ada",
        "Product manager",
        "Asia/Tokyo",
        "2026-11-22 21:00",
        "locale is ja",
        "Ship the mobile app",
        "mobile",
        "2027-01-15",
        "short",
    ):
        assert part in text, part
