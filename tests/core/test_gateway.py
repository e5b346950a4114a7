"""The WebSocket gateway, attacked and used as a client would."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import UUID

import jwt
import msgspec
import pytest
import websockets

from mathia.app import create_app
from mathia.cli import WEBSOCKET_OPTIONS
from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.db import session_scope
from mathia.rooms import services
from mathia.rooms.models import Room, SenderKind
from mathia.runtime import Runtime
from tests.client import Member, Socket, sign_up


async def room_with_two(base_url: str) -> tuple[Member, Member, str]:
    ada, bob = await sign_up(base_url, "Ada"), await sign_up(base_url, "Bob")
    workspace = await ada.workspace()
    await ada.invite(workspace, bob)
    room = await ada.room(workspace)
    assert (await bob.post(f"/api/rooms/{room}/join")).status_code == 200
    return ada, bob, room


async def test_messages_reach_every_subscriber_in_order(base_url: str) -> None:
    ada, bob, room = await room_with_two(base_url)
    async with ada.socket(base_url) as a, bob.socket(base_url) as b:
        await a.subscribe(room)
        await b.subscribe(room)
        for i in range(3):
            await a.send(
                {
                    "type": "message.send",
                    "room_id": room,
                    "body": f"hello {i}",
                    "ref": i,
                    "sender": {"id": bob.user_id, "display_name": "Bob", "kind": "assistant"},
                }
            )
        seen_by_bob = await b.messages(3)
        seen_by_ada = await a.messages(3)
    assert [m["body"] for m in seen_by_bob] == ["hello 0", "hello 1", "hello 2"]
    assert [m["seq"] for m in seen_by_bob] == [m["seq"] for m in seen_by_ada] == [1, 2, 3]
    # The spoofed sender field is ignored: identity comes from the token.
    assert {m["sender"]["id"] for m in seen_by_bob} == {ada.user_id}
    assert {m["sender"]["kind"] for m in seen_by_bob} == {"user"}


async def test_subscribe_replays_what_was_missed(base_url: str) -> None:
    ada, bob, room = await room_with_two(base_url)
    for i in range(4):
        await ada.post(f"/api/rooms/{room}/messages", {"body": f"m{i}"})
    async with bob.socket(base_url) as b:
        await b.subscribe(room, after_seq=2)
        replayed = await b.messages(2)
        await ada.post(f"/api/rooms/{room}/messages", {"body": "live"})
        live = await b.messages(1)
    assert [m["seq"] for m in replayed] == [3, 4]
    assert live[0]["body"] == "live"
    assert live[0]["seq"] == 5


async def test_typing_presence_and_ping(base_url: str) -> None:
    ada, bob, room = await room_with_two(base_url)
    async with ada.socket(base_url) as a:
        await a.subscribe(room)
        async with bob.socket(base_url) as b:
            await b.subscribe(room)
            online = await a.expect(lambda f: f["type"] == "presence" and f["user_id"] == bob.user_id)
            assert online["status"] == "online"
            await b.send({"type": "typing", "room_id": room})
            typing = await a.expect("typing")
            assert typing == {"type": "typing", "room_id": room, "user_id": bob.user_id}
            await b.send({"type": "ping", "ref": "p1"})
            assert (await b.expect("pong")) == {"type": "pong", "ref": "p1"}
        offline = await a.expect(lambda f: f["type"] == "presence" and f["status"] == "offline")
        assert offline["user_id"] == bob.user_id


async def test_closing_mid_stream_still_goes_offline(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A client that hangs up while frames are still being forwarded to it is announced offline,
    and its hanging up is not logged as a failure."""
    ada, bob, room = await room_with_two(base_url)
    async with ada.socket(base_url) as a:
        await a.subscribe(room)
        for _ in range(5):
            async with bob.socket(base_url) as b:
                await b.subscribe(room)
                await a.expect(lambda f: f["type"] == "presence" and f["status"] == "online")
                for _ in range(50):  # the room keeps streaming to Bob as he leaves
                    await a.send({"type": "typing", "room_id": room})
            offline = await a.expect(lambda f: f["type"] == "presence" and f["status"] == "offline")
            assert offline["user_id"] == bob.user_id
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_frame"),
        (json.dumps([1, 2]), "invalid_frame"),
        (json.dumps({"type": "launch.missiles"}), "invalid_frame"),
        (json.dumps({"type": "message.send", "ref": "r1"}), "invalid_frame"),
        (json.dumps({"type": "subscribe", "room_id": "not-a-uuid"}), "invalid_frame"),
        (json.dumps({"type": "subscribe", "room_id": "00000000-0000-0000-0000-000000000000"}), "not_found"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(
    base_url: str, frame: str, code: str
) -> None:
    ada = await sign_up(base_url)
    async with ada.socket(base_url) as a:
        await a.send(frame)
        error = await a.expect("error")
        assert error["code"] == code
        assert error["detail"]
        await a.send({"type": "ping"})
        await a.expect("pong")


async def test_oversized_frames_and_bodies_store_nothing(base_url: str, app_settings: Settings) -> None:
    ada, _bob, room = await room_with_two(base_url)
    async with ada.socket(base_url) as a:
        await a.subscribe(room)
        ten_megabytes = json.dumps(
            {"type": "message.send", "room_id": room, "body": "x" * 10_000_000, "ref": 1}
        )
        await a.send(ten_megabytes)
        assert (await a.expect("error", timeout=15))["code"] == "too_large"
        await a.send(
            {
                "type": "message.send",
                "room_id": room,
                "body": "y" * (app_settings.max_message_bytes + 1),
                "ref": "big",
            }
        )
        error = await a.expect("error")
        assert (error["code"], error["ref"]) == ("too_large", "big")
        await a.send({"type": "message.send", "room_id": room, "body": "   ", "ref": "blank"})
        assert (await a.expect("error"))["code"] == "invalid_frame"
        await a.send({"type": "ping"})
        await a.expect("pong")
    assert (await ada.get(f"/api/rooms/{room}/messages")).json()["items"] == []


async def test_other_workspaces_rooms_are_invisible(base_url: str) -> None:
    _ada, _bob, room = await room_with_two(base_url)
    mallory = await sign_up(base_url, "Mallory")
    await mallory.workspace()
    async with mallory.socket(base_url) as m:
        for frame in (
            {"type": "subscribe", "room_id": room},
            {"type": "typing", "room_id": room},
            {"type": "message.send", "room_id": room, "body": "let me in"},
        ):
            await m.send(frame)
            assert (await m.expect("error"))["code"] == "not_found"
    assert (await _ada.get(f"/api/rooms/{room}/messages")).json()["items"] == []


async def test_send_rate_limit(base_url: str, app_settings: Settings) -> None:
    ada = await sign_up(base_url)
    room = await ada.room(await ada.workspace())
    async with ada.socket(base_url) as a:
        for i in range(app_settings.send_rate_limit + 1):
            await a.send({"type": "message.send", "room_id": room, "body": f"spam {i}", "ref": i})
        error = await a.expect("error")
    assert error["code"] == "rate_limited"
    assert error["ref"] == app_settings.send_rate_limit
    stored = (await ada.get(f"/api/rooms/{room}/messages", limit=200)).json()["items"]
    assert len(stored) == app_settings.send_rate_limit


def token_expiring_in(seconds: float, member: Member, settings: Settings) -> str:
    expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return jwt.encode(
        {"sub": member.user_id, "typ": "access", "exp": expiry}, settings.secret_key, algorithm="HS256"
    )


async def test_invalid_tokens_close_with_4401(base_url: str, app_settings: Settings) -> None:
    ada = await sign_up(base_url)
    expired = token_expiring_in(-5, ada, app_settings)
    for token in (expired, ada.refresh_token, "forged.token.value", ""):
        url = base_url.replace("http", "ws", 1) + f"/ws?token={token}"
        async with websockets.connect(url) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


async def test_a_socket_is_closed_when_its_token_expires(base_url: str, app_settings: Settings) -> None:
    ada, _bob, room = await room_with_two(base_url)
    async with ada.socket(base_url, token=token_expiring_in(2, ada, app_settings)) as a:
        await a.subscribe(room)  # accepted while the token is valid
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await a.expect("never sent", timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "access token expired")


async def test_a_fresh_token_sent_over_the_socket_keeps_it_open(
    base_url: str, app_settings: Settings
) -> None:
    ada, bob, room = await room_with_two(base_url)
    async with ada.socket(base_url, token=token_expiring_in(2, ada, app_settings)) as a:
        await a.subscribe(room)
        # Someone else's token, a refresh token and garbage are refused; the socket stays open.
        for ref, token in enumerate((bob.access_token, ada.refresh_token, "garbage")):
            await a.send({"type": "auth", "token": token, "ref": ref})
            refused = await a.expect("error")
            assert (refused["code"], refused["ref"]) == ("forbidden", ref)
        await a.send({"type": "auth", "token": ada.access_token, "ref": "fresh"})
        accepted = await a.expect("authenticated")
        assert accepted["ref"] == "fresh"
        assert accepted["expires_at"] > dt.datetime.now(dt.UTC).timestamp() + 60
        await asyncio.sleep(3)  # past the first token's expiry
        await bob.post(f"/api/rooms/{room}/messages", {"body": "still there?"})
        assert (await a.messages(1))[0]["body"] == "still there?"


@pytest.fixture
async def runtime(app_settings: Settings) -> AsyncIterator[Runtime]:
    """The app's database and Redis, to do what another server process would."""
    runtime = Runtime(app_settings)
    yield runtime
    await runtime.aclose()


async def store_unpublished(
    runtime: Runtime, room_id: str, sender: Member | None, bodies: list[str]
) -> list[Any]:
    """Messages stored as a process that has not published them yet would leave them: the
    sender's, or the assistant's answers when `sender` is None."""
    kind = SenderKind.ASSISTANT if sender is None else SenderKind.USER
    sender_id = None if sender is None else UUID(sender.user_id)
    async with session_scope(runtime.db) as session:
        room = await session.get_one(Room, UUID(room_id))
        stored = [
            await services.post_message(session, room=room, body=body, sender_kind=kind, sender_id=sender_id)
            for body in bodies
        ]
    return [services.message_out(message, None if sender is None else "Ada") for message in stored]


async def test_a_message_published_before_an_earlier_one_waits_for_it(
    base_url: str, runtime: Runtime
) -> None:
    """Another process may publish message 2 before message 1 reaches Redis: a subscriber still
    gets 1 (from the database) before 2, and 1 only once when its own frame comes late."""
    ada, bob, room = await room_with_two(base_url)
    async with bob.socket(base_url) as b:
        await b.subscribe(room)
        first, second = await store_unpublished(runtime, room, ada, ["first", "second"])
        await runtime.room_bus.publish(UUID(room), {"type": "message.new", "message": second})
        await runtime.room_bus.publish(UUID(room), {"type": "message.new", "message": first})
        async with ada.socket(base_url) as a:
            await a.send({"type": "message.send", "room_id": room, "body": "third"})
            seen = await b.messages(3)
        await b.send({"type": "ping", "ref": "after"})
        await b.expect("pong")
    assert [(m["seq"], m["body"]) for m in seen] == [(1, "first"), (2, "second"), (3, "third")]
    assert [f for f in b.frames if f["type"] == "message.new"][3:] == []  # "first" was not sent twice


async def test_a_gap_filled_within_one_read_of_redis_closes_nothing(base_url: str, runtime: Runtime) -> None:
    """Message 2 and then message 1 published in one pipeline reach the room's feed back to back:
    the gap closes before the socket has begun to wait for it, and both go out in order."""
    ada, bob, room = await room_with_two(base_url)
    async with bob.socket(base_url) as b:
        await b.subscribe(room)
        first, second = await store_unpublished(runtime, room, ada, ["first", "second"])
        await asyncio.gather(  # frames queued together go in one pipeline
            *(
                runtime.room_bus.publish(UUID(room), {"type": "message.new", "message": m})
                for m in (second, first)
            )
        )
        await publish_and_mark(runtime, room, b, [])
    assert [f["message"]["body"] for f in b.frames if f["type"] == "message.new"] == ["first", "second"]


async def publish_and_mark(runtime: Runtime, room: str, socket: Socket, frames: list[Any]) -> None:
    """Publish `frames` to the room, then a marker, and wait for the socket to get the marker:
    a room's frames reach a socket in the order published, so by then all are in."""
    for frame in [*frames, {"type": "typing", "room_id": room, "user_id": "marker"}]:
        await runtime.room_bus.publish(UUID(room), frame)
    await socket.expect(lambda f: f.get("user_id") == "marker")


async def test_a_frame_of_this_process_reaches_each_socket_once(base_url: str, runtime: Runtime) -> None:
    """The server's own frames go to its sockets as published, and their copies from Redis are
    skipped: a typing frame (no seq to drop a second copy by) arrives once."""
    ada, bob, room = await room_with_two(base_url)
    async with ada.socket(base_url) as a, bob.socket(base_url) as b:
        await a.subscribe(room)
        await b.subscribe(room)
        await a.send({"type": "typing", "room_id": room})
        await a.send({"type": "ping", "ref": "typed"})
        await a.expect("pong")  # frames are handled in turn: the typing frame is in Redis by now
        await publish_and_mark(runtime, room, b, [])  # and its copy has reached the server's feed
    typing = [f for f in b.frames if f["type"] == "typing" and f["user_id"] == ada.user_id]
    assert typing == [{"type": "typing", "room_id": room, "user_id": ada.user_id}]


async def test_answers_whose_frames_cross_each_arrive_as_they_came(base_url: str, runtime: Runtime) -> None:
    """Two processes finish answers 1 and 2, and 2's ai.done reaches Redis first: the socket holds
    it (and what follows) until 1's comes, and each answer arrives once, as its ai.done."""
    _, bob, room = await room_with_two(base_url)
    async with bob.socket(base_url) as b:
        await b.subscribe(room)
        first, second = await store_unpublished(runtime, room, None, ["answer 1", "answer 2"])
        between = {"type": "typing", "room_id": room, "user_id": "between"}
        crossed = [{"type": "ai.done", "message": second}, between, {"type": "ai.done", "message": first}]
        await publish_and_mark(runtime, room, b, crossed)
    kept = [f for f in b.frames if f["type"] in ("ai.done", "typing")]
    assert [f.get("user_id") or f["message"]["body"] for f in kept] == [
        "answer 1",
        "answer 2",
        "between",
        "marker",
    ]


async def test_a_message_whose_frame_never_comes_is_read_from_the_database(
    base_url: str, runtime: Runtime
) -> None:
    """Message 1 is stored but its process died before publishing it: the socket waits briefly
    for it, then reads it from the database and sends it before 2."""
    _, bob, room = await room_with_two(base_url)
    async with bob.socket(base_url) as b:
        await b.subscribe(room)
        _, second = await store_unpublished(runtime, room, None, ["answer 1", "answer 2"])
        await publish_and_mark(runtime, room, b, [{"type": "ai.done", "message": second}])
    arrived = [(f["type"], f["message"]["body"]) for f in b.frames if "message" in f]
    assert arrived == [("message.new", "answer 1"), ("ai.done", "answer 2")]


@pytest.fixture(scope="module")
def small_backlog_url(app_settings: Settings) -> Iterator[str]:
    """A server that closes a socket once 200,000 characters of frames wait for it."""
    settings = msgspec.structs.replace(app_settings, ws_backlog_limit=200_000)
    with serve(create_app(settings), **WEBSOCKET_OPTIONS) as url:
        yield url


async def closed_while_stalled(
    url: str, runtime: Runtime, room: str, ada: Member, bob: Member, frames: int, after_seq: int | None = None
) -> Socket:
    """Bob subscribes and stops reading while `frames` typing frames of 60,000 characters that do
    not compress are published (Ada reads each as it comes), then reads on until the server
    closes his socket, which it must do with 1013. His socket, with what he received."""
    padding = secrets.token_urlsafe(45_000)
    frame = {"type": "typing", "room_id": room, "user_id": ada.user_id, "padding": padding}
    async with ada.socket(url) as a, bob.socket(url, receive_buffer=64 * 1024) as b:
        await a.subscribe(room)
        await b.subscribe(room, after_seq)
        assert b.connection is not None
        b.connection.transport.pause_reading()  # his frames pile up on the server
        for _ in range(frames):
            await runtime.room_bus.publish(UUID(room), frame)
            await a.expect(lambda f: "padding" in f)
        b.connection.transport.resume_reading()
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                b.frames.append(json.loads(await asyncio.wait_for(b.connection.recv(), 30)))
    assert b.connection.close_code == 1013
    return b


async def test_a_client_that_stops_reading_is_closed_and_holds_up_nobody(
    small_backlog_url: str, runtime: Runtime
) -> None:
    ada, bob, room = await room_with_two(small_backlog_url)
    count = 200  # 12 MB: more than the kernel's socket buffers can hide
    b = await closed_while_stalled(small_backlog_url, runtime, room, ada, bob, count)
    assert sum("padding" in f for f in b.frames) < count


async def test_a_long_replay_waits_for_the_client_instead_of_closing_it(
    small_backlog_url: str, runtime: Runtime
) -> None:
    """300 stored messages of 4,000 characters are six times the backlog limit: the replay
    puts them on the socket as it drains, and none is lost."""
    ada, bob, room = await room_with_two(small_backlog_url)
    await store_unpublished(runtime, room, ada, [f"{i:04} " + "y" * 3995 for i in range(300)])
    async with bob.socket(small_backlog_url) as b:
        await b.subscribe(room, after_seq=0)
        replayed = await b.messages(300, timeout=30)
    assert [m["seq"] for m in replayed] == list(range(1, 301))
    assert [m["body"][:4] for m in replayed] == [f"{i:04}" for i in range(300)]


async def test_a_client_slow_to_take_a_replay_in_a_busy_room_is_closed(
    small_backlog_url: str, runtime: Runtime
) -> None:
    """Live frames wait while the stored messages are replayed; when more of them wait than the
    backlog limit, the socket is closed there, not after the whole replay was sent."""
    ada, bob, room = await room_with_two(small_backlog_url)
    stored = 800  # 5.6 MB of replay: more than the kernel's socket buffers take
    await store_unpublished(runtime, room, ada, [f"{i:04} " + "y" * 6995 for i in range(stored)])
    b = await closed_while_stalled(
        small_backlog_url, runtime, room, ada, bob, 5, after_seq=0
    )  # 300,000 characters
    replayed = sum(f["type"] == "message.new" for f in b.frames)
    # More are missing than a full outbox holds (200,000 characters): it closed mid-replay.
    assert replayed < stored - 200_000 // 7_000
