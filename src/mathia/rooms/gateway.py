"""The WebSocket gateway: one socket per client carries all its rooms.

Each subscribed room has a forwarding task fed by a ChannelsPlugin subscriber.
Messages reach the client strictly in `seq` order: a frame whose seq skips ahead
(another process published its later message first) makes the task fill the gap
from the database, and a frame already delivered is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, WebSocketDisconnect
from sqlalchemy import select

from mathia.assistant.streaming import Assistant
from mathia.auth.dependencies import token_user
from mathia.auth.models import User
from mathia.auth.services import AccessToken, read_access_token
from mathia.db import session_scope
from mathia.errors import Forbidden, NotFound, frame_code
from mathia.rooms import services
from mathia.rooms.models import Room
from mathia.rooms.presence import Presence, presence_frame
from mathia.rooms.realtime import publish_room, room_channel, user_channel
from mathia.rooms.schemas import (
    AnyClientFrame,
    Authenticate,
    Ping,
    SendMessage,
    StopGeneration,
    Subscribe,
    Typing,
    Unsubscribe,
)
from mathia.runtime import Runtime

log = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
_REPLAY_BATCH = 200
_decode_frame = msgspec.json.Decoder(AnyClientFrame).decode
_encode = msgspec.json.Encoder().encode


class _SeqOnly(msgspec.Struct):
    seq: int


class _Head(msgspec.Struct):
    """Just enough of a published frame to order it; the rest is forwarded untouched."""

    type: str
    message: _SeqOnly | None = None


_decode_head = msgspec.json.Decoder(_Head).decode


@dataclass
class RoomStream:
    room_id: UUID
    subscriber: Subscriber
    last_seq: int
    task: asyncio.Task[None] | None = None


@dataclass
class Connection:
    socket: WebSocket[Any, Any, Any]
    runtime: Runtime
    channels: ChannelsPlugin
    assistant: Assistant
    tracker: Presence
    user: User
    expires: float  # event-loop time when the socket's access token expires
    rooms: dict[UUID, RoomStream] = field(default_factory=dict)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: Any) -> None:
        await self.send_raw(_encode(frame))

    async def send_raw(self, data: bytes) -> None:
        async with self.send_lock:
            try:
                await self.socket.send_data(data.decode(), mode="text")
            except OSError as exc:  # uvicorn's ClientDisconnected: the client hung up mid-send
                raise WebSocketDisconnect(detail="the client went away") from exc

    async def error(self, code: str, detail: str, ref: Any = None) -> None:
        await self.send({"type": "error", "code": code, "detail": detail, **_echo(ref)})

    # --- receiving -------------------------------------------------------------------------
    async def handle(self, raw: str | bytes) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        limit = self.runtime.settings.max_frame_bytes
        if len(data) > limit:
            await self.error("too_large", f"frame of {len(data)} bytes is over the limit of {limit}")
            return
        try:
            frame = _decode_frame(data)
        except msgspec.DecodeError as exc:
            await self.error("invalid_frame", str(exc), _ref_of(data))
            return
        try:
            await self.dispatch(frame)
        except WebSocketDisconnect:
            raise
        except HTTPException as exc:
            await self.error(frame_code(exc), str(exc.detail), frame.ref)
        except Exception:
            log.exception("frame %s from user %s failed", type(frame).__name__, self.user.id)
            await self.error("internal_error", "the server could not handle this frame", frame.ref)

    async def dispatch(self, frame: AnyClientFrame) -> None:
        match frame:
            case Ping():
                await self.send({"type": "pong", **_echo(frame.ref)})
            case Subscribe():
                await self.subscribe(frame.room_id, frame.after_seq)
            case Unsubscribe():
                await self.unsubscribe(frame.room_id)
                await self.send({"type": "unsubscribed", "room_id": frame.room_id})
            case SendMessage():
                message = await services.send_user_message(
                    self.runtime, self.user, frame.room_id, frame.body, frame.client_id
                )
                if frame.ref is not None:
                    await self.send({"type": "ack", "ref": frame.ref, "message": message})
            case Typing():
                self.subscribed(frame.room_id)
                await publish_room(
                    self.runtime.redis,
                    frame.room_id,
                    {"type": "typing", "room_id": frame.room_id, "user_id": self.user.id},
                )
            case StopGeneration():
                await self.stop_generation(frame.message_id)
            case Authenticate():
                token = read_access_token(self.runtime.settings, frame.token)
                if token.user_id != self.user.id:
                    raise Forbidden("this token belongs to another user")
                self.expires = _loop_time_of(token)
                await self.send({"type": "authenticated", "expires_at": token.expires_at, **_echo(frame.ref)})

    def subscribed(self, room_id: UUID) -> RoomStream:
        stream = self.rooms.get(room_id)
        if stream is None:
            raise NotFound("room not found, or not subscribed")
        return stream

    async def stop_generation(self, message_id: UUID) -> None:
        room_id = await self.assistant.generation_room(message_id)
        if room_id is None or room_id not in self.rooms:
            raise NotFound("no generation with this message_id in your subscribed rooms")
        await self.assistant.request_stop(message_id)

    # --- rooms -----------------------------------------------------------------------------
    async def subscribe(self, room_id: UUID, after_seq: int | None) -> None:
        async with session_scope(self.runtime.db) as session:
            await services.visible_room(session, room_id, self.user.id)
        if room_id in self.rooms:
            await self.unsubscribe(room_id)
        # Subscribe before reading last_seq: anything committed later is then sure to arrive.
        subscriber = await self.channels.subscribe(room_channel(room_id))
        if after_seq is None:
            async with session_scope(self.runtime.db) as session:
                after_seq = await session.scalar(select(Room.last_seq).where(Room.id == room_id))
        stream = RoomStream(room_id, subscriber, last_seq=after_seq or 0)
        self.rooms[room_id] = stream
        await self.send({"type": "subscribed", "room_id": room_id})
        stream.task = asyncio.create_task(self.forward(stream))
        await self.presence(room_id, +1)

    async def unsubscribe(self, room_id: UUID) -> None:
        stream = self.rooms.pop(room_id, None)
        if stream is None:
            return
        try:
            await self.channels.unsubscribe(stream.subscriber)
            if stream.task is not None:
                stream.task.cancel()
                # The task may already have died sending to a socket the client closed.
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await stream.task
        finally:
            await self.presence(room_id, -1)

    async def forward(self, stream: RoomStream) -> None:
        try:
            await self.replay(stream)
            async for event in stream.subscriber.iter_events():
                head = _decode_head(event)
                if head.message is None:  # typing, presence, ai.delta...: no place in the seq order
                    await self.send_raw(event)
                    continue
                seq = head.message.seq
                if seq <= stream.last_seq:
                    continue
                if seq > stream.last_seq + 1:
                    await self.replay(stream, until=seq - 1)
                await self.send_raw(event)
                stream.last_seq = seq
        except (WebSocketDisconnect, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("forwarding room %s to user %s failed", stream.room_id, self.user.id)

    async def replay(self, stream: RoomStream, until: int | None = None) -> None:
        """Send stored messages after stream.last_seq (up to `until`), in order."""
        while True:
            async with session_scope(self.runtime.db) as session:
                page = await services.messages_page(
                    session,
                    stream.room_id,
                    after=stream.last_seq,
                    before=None if until is None else until + 1,
                    limit=_REPLAY_BATCH,
                )
            for message in page.items:
                await self.send({"type": "message.new", "message": message})
                stream.last_seq = message.seq
            if not page.has_more:
                return

    async def presence(self, room_id: UUID, change: int) -> None:
        """Count this socket in or out of the room; announce the user's first and last socket."""
        user = str(self.user.id)
        if change > 0:
            online = await self.tracker.join(room_id, self.user.id)
            for other in online.keys() - {user}:
                await self.send(presence_frame(room_id, other, "online"))
            if online[user] == 1:
                await publish_room(self.runtime.redis, room_id, presence_frame(room_id, user, "online"))
        elif user not in await self.tracker.leave(room_id, self.user.id):
            await publish_room(self.runtime.redis, room_id, presence_frame(room_id, user, "offline"))

    async def close(self) -> None:
        for room_id in list(self.rooms):
            await self.unsubscribe(room_id)


def _echo(ref: Any) -> dict[str, Any]:
    """The client's `ref`, for a reply frame, when it gave one."""
    return {} if ref is None else {"ref": ref}


def _loop_time_of(token: AccessToken) -> float:
    return asyncio.get_running_loop().time() + token.expires_at - time.time()


def _ref_of(data: bytes) -> Any:
    with contextlib.suppress(msgspec.DecodeError):
        decoded = msgspec.json.decode(data)
        if isinstance(decoded, dict):
            return decoded.get("ref")
    return None


@websocket("/ws")
async def gateway(
    socket: WebSocket[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    channels: NamedDependency[ChannelsPlugin],
    assistant: NamedDependency[Assistant],
    presence: NamedDependency[Presence],
) -> None:
    await socket.accept()
    try:
        token = read_access_token(runtime.settings, socket.query_params.get("token", ""))
        async with session_scope(runtime.db) as session:
            user = await token_user(session, token)
    except NotAuthorizedException as exc:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason=str(exc.detail))
        return
    connection = Connection(socket, runtime, channels, assistant, presence, user, _loop_time_of(token))
    notifications = await channels.subscribe(user_channel(user.id))
    try:
        async with notifications.run_in_background(connection.send_raw, join=False):
            while True:
                # The socket lives as long as its token (an `auth` frame brings a fresh one).
                # The deadline applies while waiting, never in the middle of a frame.
                async with asyncio.timeout_at(connection.expires):
                    event = await socket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                await connection.handle(event.get("text") or event.get("bytes") or b"")  # type: ignore[arg-type]
    except WebSocketDisconnect:
        pass
    except TimeoutError:
        await socket.close(code=CLOSE_UNAUTHORIZED, reason="access token expired")
    finally:
        try:
            await channels.unsubscribe(notifications)
        finally:
            await connection.close()
