"""@mathia in a room, end to end over the WebSocket: the offline default, the real
Anthropic SDK against the fake server, stopping, failures, credits, two processes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mathia.app import create_app
from mathia.assistant.streaming import MAX_MODEL_CALLS
from mathia.config import Settings
from mathia.connectors.testing import serve
from tests.client import Member, Socket, sign_up
from tests.fakes.anthropic import FakeAnthropic, Reply, ToolUse
from tests.processes import mathia_server


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic()
    with fake.running() as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake


def model_settings(app_settings: Settings, fake: FakeAnthropic, **overrides: Any) -> Settings:
    return msgspec.structs.replace(
        app_settings,
        anthropic_api_key=fake.api_key,
        anthropic_base_url=fake.url,
        ai_first_token_timeout=2.0,  # type: ignore[attr-defined]
        **overrides,
    )


@pytest.fixture(scope="module")
def model_url(app_settings: Settings, fake: FakeAnthropic) -> Iterator[str]:
    with serve(create_app(model_settings(app_settings, fake))) as url:
        yield url


async def two_in_a_room(base_url: str) -> tuple[Member, Member, str]:
    ada, bob = await sign_up(base_url, "Ada"), await sign_up(base_url, "Bob")
    workspace = await ada.workspace("Lovelace Labs")
    await ada.invite(workspace, bob)
    room = await ada.room(workspace, "planning")
    assert (await bob.post(f"/api/rooms/{room}/join")).status_code == 200
    return ada, bob, room


async def answer(socket: Socket, timeout: float = 10) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The ai.start frame, the streamed text, and the ai.done message."""
    start = await socket.expect("ai.start", timeout)
    text = ""
    while True:
        frame = await socket.expect(lambda f: f["type"] in ("ai.delta", "ai.done"), timeout)
        if frame["type"] == "ai.done":
            return start, text, frame["message"]
        assert frame["message_id"] == start["message_id"]
        text += frame["text"]


async def test_offline_provider_answers_honestly(base_url: str) -> None:
    ada = await sign_up(base_url)
    room = await ada.room(await ada.workspace())
    async with ada.socket(base_url) as socket:
        await socket.subscribe(room)
        await socket.send({"type": "message.send", "room_id": room, "body": "@mathia hello"})
        start, text, done = await answer(socket)
    assert "No AI model is configured" in text
    assert done["body"] == text
    assert done["id"] == start["message_id"]
    assert done["sender"] == {"id": None, "display_name": "Mathia", "kind": "assistant"}
    assert done["seq"] == 2
    stored = (await ada.get(f"/api/rooms/{room}/messages")).json()["items"]
    assert [m["sender"]["kind"] for m in stored] == ["user", "assistant"]


async def test_messages_without_a_mention_get_no_answer(base_url: str) -> None:
    ada = await sign_up(base_url)
    room = await ada.room(await ada.workspace())
    async with ada.socket(base_url) as socket:
        await socket.subscribe(room)
        for body in ("hello mathia", "mail me at x@mathia.com", "@mathiaxyz hi"):
            await socket.send({"type": "message.send", "room_id": room, "body": body})
        await socket.messages(3)
        await socket.send({"type": "ping"})
        await socket.expect("pong")
    assert not any(f["type"].startswith("ai.") for f in socket.frames)


async def test_claude_streams_to_every_member_with_the_room_as_context(
    model_url: str, fake: FakeAnthropic
) -> None:
    ada, bob, room = await two_in_a_room(model_url)
    chunks = ["The", " plan", " is", " to", " ship", " on", " Friday", "."]
    fake.script(Reply(chunks=chunks, pace=0.01))
    before = len(fake.exchanges)
    async with ada.socket(model_url) as a, bob.socket(model_url) as b:
        await a.subscribe(room)
        await b.subscribe(room)
        await b.send({"type": "message.send", "room_id": room, "body": "We ship when the tests pass."})
        await a.messages(1)  # stored before the question, so it is in the history
        await a.send({"type": "message.send", "room_id": room, "body": "@mathia what is the plan?"})
        _, text_a, done_a = await answer(a)
        _, text_b, done_b = await answer(b)
    assert text_a == text_b == "".join(chunks)
    assert done_a == done_b
    assert done_a["body"] == "".join(chunks)
    request = fake.exchanges[before].body
    assert "Lovelace Labs" in str(request["system"])
    assert "planning" in str(request["system"])
    assert request["messages"] == [
        {"role": "user", "content": "Bob: We ship when the tests pass.\nAda: @mathia what is the plan?"}
    ]
    usage = (
        await ada.get(f"/api/workspaces/{(await ada.get('/api/workspaces')).json()[0]['id']}/usage")
    ).json()
    assert usage["rows"][0]["calls"] == 1
    assert usage["rows"][0]["output_tokens"] == len(chunks)


async def test_the_conversation_survives_a_restart(app_settings: Settings, fake: FakeAnthropic) -> None:
    """A new server, with nothing of the old one's memory, sends the model the earlier turns."""
    settings = model_settings(app_settings, fake)
    fake.script(Reply(chunks=["Ship", " on", " Friday."]), Reply(chunks=["Then", " rest."]))
    with serve(create_app(settings)) as url:
        ada = await sign_up(url)
        room = await ada.room(await ada.workspace())
        async with ada.socket(url) as socket:
            await socket.subscribe(room)
            await socket.send({"type": "message.send", "room_id": room, "body": "@mathia what is the plan?"})
            await answer(socket)
    before = len(fake.exchanges)
    with serve(create_app(settings)) as url:
        async with ada.socket(url) as socket:
            await socket.subscribe(room)
            await socket.send({"type": "message.send", "room_id": room, "body": "@mathia and after that?"})
            _, text, _ = await answer(socket)
    assert text == "Then rest."
    assert fake.exchanges[before].body["messages"] == [
        {"role": "user", "content": "Ada: @mathia what is the plan?"},
        {"role": "assistant", "content": "Ship on Friday."},
        {"role": "user", "content": "Ada: @mathia and after that?"},
    ]


async def test_a_member_can_stop_a_generation(model_url: str, fake: FakeAnthropic) -> None:
    ada, bob, room = await two_in_a_room(model_url)
    fake.script(Reply.long(words=400, pace=0.02))
    async with ada.socket(model_url) as a, bob.socket(model_url) as b:
        await a.subscribe(room)
        await b.subscribe(room)
        await a.send({"type": "message.send", "room_id": room, "body": "@mathia write an essay"})
        start = await b.expect("ai.start")
        for _ in range(3):
            await b.expect("ai.delta")
        await b.send({"type": "ai.stop", "message_id": start["message_id"]})
        error = await a.expect("ai.error")
        done = await a.expect("ai.done")
    assert error["detail"] == "stopped"
    assert done["message"]["body"].startswith(" word0 word1 word2")
    assert done["message"]["body"].endswith("[incomplete]")
    assert len(done["message"]["body"].split()) < 100
    assert fake.exchanges[-1].disconnected


async def test_strangers_cannot_stop_a_generation(model_url: str, fake: FakeAnthropic) -> None:
    ada, _bob, room = await two_in_a_room(model_url)
    mallory = await sign_up(model_url, "Mallory")
    fake.script(Reply(chunks=["slow", " answer"], pace=0.3))
    async with ada.socket(model_url) as a, mallory.socket(model_url) as m:
        await a.subscribe(room)
        await a.send({"type": "message.send", "room_id": room, "body": "@mathia hi"})
        start = await a.expect("ai.start")
        await m.send({"type": "ai.stop", "message_id": start["message_id"], "ref": "x"})
        assert (await m.expect("error"))["code"] == "not_found"
        done = await a.expect("ai.done")
    assert done["message"]["body"] == "slow answer"


async def test_a_failure_mid_stream_keeps_the_text_marked_incomplete(
    model_url: str, fake: FakeAnthropic
) -> None:
    ada = await sign_up(model_url)
    room = await ada.room(await ada.workspace())
    fake.script(Reply(chunks=["Half", " an", " answer"], error_after=2))
    async with ada.socket(model_url) as socket:
        await socket.subscribe(room)
        await socket.send({"type": "message.send", "room_id": room, "body": "@mathia go"})
        error = await socket.expect("ai.error")
        done = await socket.expect("ai.done")
    assert "stopped answering" in error["detail"]
    assert done["message"]["body"] == "Half an [incomplete]"


async def test_a_model_that_keeps_calling_tools_is_cut_off(model_url: str, fake: FakeAnthropic) -> None:
    ada = await sign_up(model_url)
    room = await ada.room(await ada.workspace())
    tool = ToolUse("nothing__here", {})
    fake.script(*(Reply(chunks=[f"Try {i}."], tool_calls=[tool]) for i in range(MAX_MODEL_CALLS)))
    before = len(fake.exchanges)
    async with ada.socket(model_url) as socket:
        await socket.subscribe(room)
        await socket.send({"type": "message.send", "room_id": room, "body": "@mathia loop"})
        error = await socket.expect("ai.error")
        done = await socket.expect("ai.done")
    # Members see each round's tools announced; the last round's are not run (no call could use them).
    announced = [f["tools"] for f in socket.frames if f["type"] == "ai.tool"]
    assert announced == [["nothing__here"]] * (MAX_MODEL_CALLS - 1)
    assert error["detail"] == f"the model was still calling tools after {MAX_MODEL_CALLS} calls"
    assert done["message"]["body"] == "Try 0.\n\nTry 1.\n\nTry 2.\n\nTry 3. [incomplete]"
    calls = fake.exchanges[before:]
    assert len(calls) == MAX_MODEL_CALLS and all(c.status == 200 for c in calls)
    # Each call after the first carried every earlier round, each tool's outcome as its result.
    results = [m["content"] for m in calls[-1].body["messages"] if m["role"] == "user"][1:]
    missing = "there is no action called 'nothing__here'"
    assert results == [[{"type": "tool_result", "tool_use_id": tool.id, "content": missing}]] * (
        MAX_MODEL_CALLS - 1
    )


async def test_no_credits_no_model_call(app_settings: Settings, fake: FakeAnthropic) -> None:
    with serve(create_app(model_settings(app_settings, fake, wallet_starting_grant=0))) as url:
        ada = await sign_up(url)
        room = await ada.room(await ada.workspace())
        before = len(fake.exchanges)
        async with ada.socket(url) as socket:
            await socket.subscribe(room)
            await socket.send({"type": "message.send", "room_id": room, "body": "@mathia hello?"})
            error = await socket.expect("error")
    assert error["code"] == "insufficient_credits"
    assert len(fake.exchanges) == before
    assert not any(f["type"].startswith("ai.") for f in socket.frames)


async def test_deltas_cross_processes_in_order(
    postgres_url: str, redis_url: str, fake: FakeAnthropic, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MATHIA_SECRET_KEY": secrets.token_hex(16),
        "MATHIA_DATA_DIR": str(tmp_path),
        "ANTHROPIC_API_KEY": fake.api_key,
        "ANTHROPIC_BASE_URL": fake.url,
    }  # type: ignore[attr-defined]
    chunks = [f" t{i}" for i in range(30)]
    fake.script(Reply(chunks=chunks, pace=0.005))
    with mathia_server(env, tmp_path / "a.log") as url_a, mathia_server(env, tmp_path / "b.log") as url_b:
        ada, bob, room = await two_in_a_room(url_a)
        async with ada.socket(url_a) as a, bob.socket(url_b) as b:
            await a.subscribe(room)
            await b.subscribe(room)
            await a.send({"type": "message.send", "room_id": room, "body": "@mathia count"})
            _, text_a, done_a = await answer(a, timeout=30)
            _, text_b, done_b = await answer(b, timeout=30)
    assert text_a == text_b == "".join(chunks)
    assert done_a == done_b


async def test_assistant_rate_limit_refuses_before_calling_the_model(
    app_settings: Settings, fake: FakeAnthropic
) -> None:
    with serve(create_app(model_settings(app_settings, fake, ai_user_rate_limit=1))) as url:
        ada = await sign_up(url)
        room = await ada.room(await ada.workspace())
        async with ada.socket(url) as socket:
            await socket.subscribe(room)
            await socket.send({"type": "message.send", "room_id": room, "body": "@mathia one"})
            await socket.expect("ai.done")
            before = len(fake.exchanges)
            await socket.send({"type": "message.send", "room_id": room, "body": "@mathia two"})
            error = await socket.expect("error")
    assert error["code"] == "rate_limited"
    assert error["room_id"] == room
    assert len(fake.exchanges) == before


async def test_the_prompt_carries_the_right_document_chunk_and_the_users_goals(
    model_url: str, fake: FakeAnthropic
) -> None:
    ada = await sign_up(model_url, "Ada")
    room = await ada.room(await ada.workspace("Hiring"), "candidates")
    resume = (Path(__file__).parents[1] / "memory" / "corpus" / "resume-maria-lopez.md").read_bytes()
    upload = await ada.http.post(
        f"/api/rooms/{room}/documents", files={"file": ("maria.md", resume, "text/markdown")}
    )
    assert upload.status_code == 201, upload.text
    goals = {"summary": "Hire a senior backend engineer before the summer"}
    assert (await ada.http.put("/api/me/goals", json=goals)).status_code == 200
    fake.script(Reply(chunks=["She", " worked", " at", " Parcelly", "."]))
    before = len(fake.exchanges)
    async with ada.socket(model_url) as socket:
        await socket.subscribe(room)
        await socket.send(
            {"type": "message.send", "room_id": room, "body": "@mathia where did she work in 2021?"}
        )
        _, text, _ = await answer(socket)
    assert text == "She worked at Parcelly."
    system = str(fake.exchanges[before].body["system"])
    assert "lead engineer at Parcelly" in system
    assert "maria.md" in system
    assert "Hire a senior backend engineer before the summer" in system


async def test_offline_rules_act_on_the_askers_words(base_url: str) -> None:
    ada, bob, room = await two_in_a_room(base_url)
    async with ada.socket(base_url) as a, bob.socket(base_url) as b:
        await a.subscribe(room)
        await b.subscribe(room)
        await b.send({"type": "message.send", "room_id": room, "body": "the launch is on Monday"})
        await a.messages(1)
        await a.send(
            {
                "type": "message.send",
                "room_id": room,
                "body": "@mathia remember that the launch moved to May 3",
            }
        )
        _, text, _ = await answer(a)
    notes = (await ada.get(f"/api/rooms/{room}/notes")).json()
    assert [n["body"] for n in notes] == ["the launch moved to May 3"]
    assert "the launch moved to May 3" in text
