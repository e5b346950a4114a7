"""The reminders API over HTTP on PostgreSQL: creating from text or a time, validation,
ownership, rooms of other workspaces, cancel and snooze."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tests.client import Member, sign_up


async def create(member: Member, body: dict[str, object]) -> dict[str, object]:
    response = await member.post("/api/reminders", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_text_is_read_in_the_given_timezone(base_url: str) -> None:
    ada = await sign_up(base_url)
    before = dt.datetime.now(dt.UTC)
    made = await create(ada, {"text": "remind me to call John in 10 mins", "timezone": "Asia/Tokyo"})
    due = dt.datetime.fromisoformat(str(made["due_at"]))
    assert dt.timedelta(minutes=10) <= due - before < dt.timedelta(minutes=10, seconds=5)
    assert made["message"] == "call John" and made["status"] == "pending" and made["audience"] == "me"
    assert made["understood"] == f"{due.astimezone(ZoneInfo('Asia/Tokyo')):%A %d %B %Y at %H:%M} (Asia/Tokyo)"
    listed = (await ada.get("/api/reminders")).json()
    assert [r["id"] for r in listed] == [made["id"]]
    assert (await ada.get("/api/reminders", status="cancelled")).json() == []


async def test_on_whatsapp_in_the_text_asks_for_the_channel(base_url: str) -> None:
    ada = await sign_up(base_url)
    made = await create(ada, {"text": "remind me on WhatsApp to call John in 10 mins"})
    assert (made["message"], made["channels"]) == ("call John", ["whatsapp"])
    both = await create(ada, {"text": "remind me via whatsapp in 1 hour to eat", "channels": ["whatsapp"]})
    assert both["channels"] == ["whatsapp"]
    plain = await create(ada, {"text": "remind me in 1 hour to drink water"})
    assert "channels" not in plain


async def test_bad_input_is_refused_naming_the_field_and_stores_nothing(base_url: str) -> None:
    ada = await sign_up(base_url)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    cases: list[tuple[dict[str, object], str]] = [
        ({"text": "remind me to call John sometime"}, "text: I could not find a time"),
        ({"text": "remind me yesterday at 5pm to eat"}, "text: I understood"),
        (
            {"text": "remind me in 10 minutes to call", "timezone": "Mars/Olympus"},
            "timezone: unknown timezone",
        ),
        ({"message": "call John", "due_at": past}, "due_at: "),
        ({"message": "call John", "due_at": future.replace("+00:00", "")}, "due_at: give a UTC offset"),
        ({"message": "call John"}, "due_at: a message needs a due_at"),
        ({"text": "remind me in 10 minutes to call", "message": "x", "due_at": future}, "text: send either"),
        ({}, "text: send either"),
        ({"text": ""}, "text"),
        ({"text": "remind me in 10 minutes to call", "colour": "red"}, "colour"),
        ({"text": "remind us in 10 minutes to stand up"}, "room_id: a reminder for the room needs"),
        ({"message": "call John", "due_at": future, "channels": ["sms"]}, "channels: no channel named 'sms'"),
    ]
    for body, says in cases:
        response = await ada.post("/api/reminders", body)
        assert response.status_code == 400, (body, response.text)
        assert says in response.text, (body, response.text)
    assert (await ada.get("/api/reminders")).json() == []


async def test_rooms_of_other_workspaces_and_other_peoples_reminders_are_not_found(base_url: str) -> None:
    ada, eve = await sign_up(base_url, "Ada"), await sign_up(base_url, "Eve")
    room = await ada.room(await ada.workspace())
    await eve.workspace("Elsewhere")
    text = "remind us in 1 hour to stand up"
    mine = await create(ada, {"text": text, "room_id": room})
    assert mine["audience"] == "room" and mine["room_id"] == room
    # Eve cannot tie a reminder to Ada's room, see, cancel or snooze Ada's reminder.
    assert (await eve.post("/api/reminders", {"text": text, "room_id": room})).status_code == 404
    assert (await eve.get("/api/reminders")).json() == []
    assert (await eve.http.delete(f"/api/reminders/{mine['id']}")).status_code == 404
    assert (await eve.post(f"/api/reminders/{mine['id']}/snooze", {"minutes": 5})).status_code == 404
    assert [r["status"] for r in (await ada.get("/api/reminders")).json()] == ["pending"]


async def test_snooze_and_cancel(base_url: str) -> None:
    ada = await sign_up(base_url)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    made = await create(ada, {"message": "call John", "due_at": due.isoformat()})
    assert dt.datetime.fromisoformat(str(made["due_at"])) == due
    for minutes in (0, 7 * 24 * 60 + 1, "ten"):
        response = await ada.post(f"/api/reminders/{made['id']}/snooze", {"minutes": minutes})
        assert response.status_code == 400 and "minutes" in response.text, response.text
    before = dt.datetime.now(dt.UTC)
    snoozed = (await ada.post(f"/api/reminders/{made['id']}/snooze", {"minutes": 5})).json()
    assert (
        dt.timedelta(minutes=5)
        <= dt.datetime.fromisoformat(snoozed["due_at"]) - before
        < dt.timedelta(minutes=5, seconds=5)
    )
    assert (await ada.http.delete(f"/api/reminders/{made['id']}")).status_code == 204
    assert (await ada.get("/api/reminders", status="cancelled")).json()[0]["id"] == made["id"]
    # A cancelled reminder is not snoozed back to life.
    assert (await ada.post(f"/api/reminders/{made['id']}/snooze", {"minutes": 5})).status_code == 409
    bad = await ada.get("/api/reminders", status="lost")
    assert bad.status_code == 400 and "status" in bad.text
