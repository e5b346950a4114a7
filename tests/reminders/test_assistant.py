"""Reminders through @mathia, end to end over the WebSocket with the offline provider, and
delivered by a real worker as a notification and a message in the room."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from redis.asyncio import Redis

from mathia.app import create_app
from mathia.cli import WEBSOCKET_OPTIONS
from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.jobs import QUEUE_NAME
from mathia.reminders.tools import CANCEL, CREATE, LIST, cancel_rule, list_rule, remind_rule
from tests.client import Member, Socket, sign_up
from tests.fakes.anthropic import FakeAnthropic, Reply, ToolUse
from tests.reminders.world import running_worker

# This module's app and worker share a Redis database no other test uses: the worker takes
# every job on it, and must not take another test's.
REDIS_DB = 12


@pytest.fixture(scope="module")
def settings(app_settings: Settings) -> Settings:
    redis_url = f"{str(app_settings.redis_url).rsplit('/', 1)[0]}/{REDIS_DB}"
    return msgspec.structs.replace(app_settings, redis_url=redis_url, reminder_sweep_interval=5)


@pytest.fixture(scope="module")
def url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), **WEBSOCKET_OPTIONS) as url:
        yield url


@pytest.fixture
async def queue_redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(str(settings.redis_url))
    await client.flushdb()
    yield client
    await client.aclose()


async def answer(socket: Socket, timeout: float = 10) -> str:
    """The stored body of the assistant's next answer."""
    done = await socket.expect("ai.done", timeout)
    return str(done["message"]["body"])


async def ask(socket: Socket, room: str, body: str) -> str:
    await socket.send({"type": "message.send", "room_id": room, "body": body})
    return await answer(socket)


async def in_berlin(base_url: str) -> tuple[Member, str]:
    ada = await sign_up(base_url, "Ada")
    response = await ada.http.put("/api/me/profile", json={"timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.text
    return ada, await ada.room(await ada.workspace())


@pytest.mark.parametrize(
    ("text", "name", "arguments"),
    [
        (
            "Ada: @mathia remind me to call John in 10 mins",
            CREATE,
            {"text": "remind me to call John in 10 mins"},
        ),
        (
            "Bob: hi\nAda: @mathia, remind us tomorrow at 9 to ship",
            CREATE,
            {"text": "remind us tomorrow at 9 to ship"},
        ),
        ("Ada: @mathia what are my reminders?", LIST, {}),
        ("Ada: @mathia show me my reminders", LIST, {}),
        ("Ada: @mathia cancel the reminder about John.", CANCEL, {"query": "John"}),
    ],
)
def test_rules_turn_requests_into_tool_calls(text: str, name: str, arguments: dict[str, Any]) -> None:
    calls = [call for rule in (remind_rule, list_rule, cancel_rule) if (call := rule(text)) is not None]
    assert [(c.name, c.arguments) for c in calls] == [(name, arguments)]


@pytest.mark.parametrize("text", ["Ada: @mathia remember that John called", "Ada: @mathia what is the plan?"])
def test_rules_leave_other_requests_alone(text: str) -> None:
    assert all(rule(text) is None for rule in (remind_rule, list_rule, cancel_rule))


async def test_a_reminder_set_by_chat_is_stored_in_the_users_timezone_and_queued(
    url: str, queue_redis: Redis
) -> None:
    ada, room = await in_berlin(url)
    async with ada.socket(url) as socket:
        await socket.subscribe(room)
        before = dt.datetime.now(dt.UTC)
        reply = await ask(socket, room, "@mathia remind me to call John in 10 mins")
    [stored] = (await ada.get("/api/reminders")).json()
    due = dt.datetime.fromisoformat(stored["due_at"])
    assert dt.timedelta(minutes=10) <= due - before < dt.timedelta(minutes=10, seconds=5)
    assert stored["message"] == "call John" and stored["room_id"] == room and stored["status"] == "pending"
    local = due.astimezone(ZoneInfo("Europe/Berlin"))
    assert reply == f"OK, I will remind you to call John on {local:%A %d %B %Y at %H:%M} (Europe/Berlin)."
    # Its delivery job is queued under the reminder's id.
    keys = [k.decode() for k in await queue_redis.keys(f"saq:job:{QUEUE_NAME}:reminder:{stored['id']}:*")]
    assert len(keys) == 1


async def test_on_whatsapp_by_chat_asks_for_whatsapp_delivery(url: str, queue_redis: Redis) -> None:
    ada, room = await in_berlin(url)
    async with ada.socket(url) as socket:
        await socket.subscribe(room)
        reply = await ask(socket, room, "@mathia remind me on WhatsApp to call John in 10 mins")
    [stored] = (await ada.get("/api/reminders")).json()
    assert (stored["message"], stored["channels"]) == ("call John", ["whatsapp"])
    assert reply.endswith("(Europe/Berlin) (here and on your WhatsApp).")


async def test_unparseable_and_past_requests_are_refused_and_store_nothing(
    url: str, queue_redis: Redis
) -> None:
    ada, room = await in_berlin(url)
    async with ada.socket(url) as socket:
        await socket.subscribe(room)
        vague = await ask(socket, room, "@mathia remind me to call John sometime")
        past = await ask(socket, room, "@mathia remind me yesterday at 5pm to call John")
    assert vague.startswith("I could not set that reminder: I could not find a time")
    assert past.startswith("I could not set that reminder: I understood ")
    assert past.endswith("(Europe/Berlin), which has already passed.")
    assert (await ada.get("/api/reminders")).json() == []


async def test_list_and_cancel_by_chat_see_only_this_rooms_reminders(url: str, queue_redis: Redis) -> None:
    ada, room = await in_berlin(url)
    other_room = await ada.room((await ada.get("/api/workspaces")).json()[0]["id"], "other")
    async with ada.socket(url) as socket:
        await socket.subscribe(room)
        await socket.subscribe(other_room)
        await ask(socket, room, "@mathia remind me to call John in 2 hours")
        await ask(socket, room, "@mathia remind me to water the plants in 3 hours")
        await ask(socket, other_room, "@mathia remind me to call John's sister in 1 hour")
        listed = await ask(socket, room, "@mathia what are my reminders?")
        unknown = await ask(socket, other_room, "@mathia cancel the reminder about nothing")
        cancelled = await ask(socket, room, "@mathia cancel the reminder about John")
        after = await ask(socket, room, "@mathia what are my reminders")
    lines = listed.splitlines()
    assert lines[0] == "Your pending reminders here:"
    assert [line.split(":")[0] for line in lines[1:]] == ["- call John", "- water the plants"]
    assert unknown == "You have no pending reminder about “nothing” in this room."
    assert cancelled == "Cancelled the reminder to call John."
    assert after.splitlines()[1:] == [lines[2]]
    statuses = {r["message"]: r["status"] for r in (await ada.get("/api/reminders")).json()}
    assert statuses == {
        "call John": "cancelled",
        "water the plants": "pending",
        "call John's sister": "pending",
    }


async def test_a_chat_reminder_is_delivered_by_a_worker_to_the_user_and_the_room(
    url: str, settings: Settings, queue_redis: Redis
) -> None:
    ada, room = await in_berlin(url)
    bob = await sign_up(url, "Bob")
    workspace = (await ada.get("/api/workspaces")).json()[0]["id"]
    await ada.invite(workspace, bob)
    assert (await bob.post(f"/api/rooms/{room}/join")).status_code == 200
    async with ada.socket(url) as a, bob.socket(url) as b, running_worker(settings):
        await a.subscribe(room)
        await b.subscribe(room)
        reply = await ask(a, room, "@mathia remind me to stretch in 3 seconds")
        assert reply.startswith("OK, I will remind you to stretch on ")
        [stored] = (await ada.get("/api/reminders")).json()
        note = await a.expect("notification", timeout=15)
        delivered_at = dt.datetime.now(dt.UTC)
        posted = await b.expect(
            lambda f: f["type"] == "message.new" and f["message"]["body"].startswith("Reminder")
        )
    assert note["kind"] == "reminder" and note["reminder_id"] == stored["id"] and note["message"] == "stretch"
    assert posted["message"]["body"] == "Reminder: stretch"
    assert posted["message"]["sender"]["kind"] == "assistant"
    due = dt.datetime.fromisoformat(stored["due_at"])
    assert due <= delivered_at < due + dt.timedelta(seconds=3)
    # Bob saw the room message but not Ada's notification.
    assert not any(f["type"] == "notification" for f in b.frames)
    [after] = (await ada.get("/api/reminders")).json()
    assert after["status"] == "delivered"


async def test_a_model_sets_a_reminder_through_the_tool(settings: Settings, queue_redis: Redis) -> None:
    fake = FakeAnthropic()
    with fake.running() as fake_url:
        model = msgspec.structs.replace(settings, anthropic_api_key=fake.api_key, anthropic_base_url=fake_url)
        with serve(create_app(model), **WEBSOCKET_OPTIONS) as url:
            ada, room = await in_berlin(url)
            call = ToolUse(CREATE, {"text": "remind me to call John in 10 minutes"})
            fake.script(
                Reply(chunks=["On it."], tool_calls=[call]), Reply(chunks=["Done", ": 10 minutes", "."])
            )
            async with ada.socket(url) as socket:
                await socket.subscribe(room)
                reply = await ask(socket, room, "@mathia please make sure I call John in ten minutes")
            [stored] = (await ada.get("/api/reminders")).json()
            [workspace] = (await ada.get("/api/workspaces")).json()
            usage = (await ada.get(f"/api/workspaces/{workspace['id']}/usage")).json()
    first, second = fake.exchanges
    offered = {tool["name"] for tool in first.body["tools"]}
    assert {CREATE, LIST, CANCEL} <= offered
    assert stored["message"] == "call John" and stored["room_id"] == room
    # The model was told what the tool did, and its answer is what the room reads.
    [result] = second.body["messages"][-1]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call.id
    told = result["content"]
    assert told.startswith("OK, I will remind you to call John on ") and told.endswith("(Europe/Berlin).")
    assert reply == "On it.\n\nDone: 10 minutes."
    # Two model calls, both recorded for the answer.
    assert usage["totals"]["calls"] == 2
