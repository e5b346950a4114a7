"""The WebSocket gateway: one socket per client carries all its rooms.

Every frame for a socket goes through its outbox (`fanout.Outbox`), written in order by one
task; room frames reach it from the room's feed (`fanout.RoomFeeds`)."""

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
from litestar.channels import ChannelsPlugin
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
from mathia.rooms.fanout import Outbox, RoomFeeds, RoomStream, encode_text
from mathia.rooms.models import Room
from mathia.rooms.presence import Presence, presence_frame
from mathia.rooms.realtime import user_channel
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
_decode_frame = msgspec.json.Decoder(AnyClientFrame).decode


@dataclass
class Connection:
    socket: WebSocket[Any, Any, Any]
    runtime: Runtime
    feeds: RoomFeeds
    assistant: Assistant
    tracker: Presence
    user: User
    expires: float  # event-loop time when the socket's access token expires
    outbox: Outbox
    rooms: dict[UUID, RoomStream] = field(default_factory=dict)

    def send(self, frame: Any) -> None:
        self.outbox.put(encode_text(frame))

    async def notify(self, event: bytes) -> None:
        """A frame from the user's own channel (notifications)."""
        self.outbox.put(event.decode())

    def error(self, code: str, detail: str, ref: Any = None) -> None:
        self.send({"type": "error", "code": code, "detail": detail, **_echo(ref)})

    # --- receiving -------------------------------------------------------------------------
    async def handle(self, raw: str | bytes) -> None:
        data = raw.encode() if isinstance(raw, str) else raw
        limit = self.runtime.settings.max_frame_bytes
        if len(data) > limit:
            self.error("too_large", f"frame of {len(data)} bytes is over the limit of {limit}")
            return
        try:
            frame = _decode_frame(data)
        except msgspec.DecodeError as exc:
            self.error("invalid_frame", str(exc), _ref_of(data))
            return
        try:
            await self.dispatch(frame)
        except HTTPException as exc:
            self.error(frame_code(exc), str(exc.detail), frame.ref)
        except Exception:
            log.exception("frame %s from user %s failed", type(frame).__name__, self.user.id)
            self.error("internal_error", "the server could not handle this frame", frame.ref)

    async def dispatch(self, frame: AnyClientFrame) -> None:
        match frame:
            case Ping():
                self.send({"type": "pong", **_echo(frame.ref)})
            case Subscribe():
                await self.subscribe(frame.room_id, frame.after_seq)
            case Unsubscribe():
                await self.unsubscribe(frame.room_id)
                self.send({"type": "unsubscribed", "room_id": frame.room_id})
            case SendMessage():
                message = await services.send_user_message(
                    self.runtime, self.user, frame.room_id, frame.body, frame.client_id
                )
                if frame.ref is not None:
                    self.send({"type": "ack", "ref": frame.ref, "message": message})
            case Typing():
                self.subscribed(frame.room_id)
                await self.runtime.room_bus.publish(
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
                self.send({"type": "authenticated", "expires_at": token.expires_at, **_echo(frame.ref)})

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
        stream = RoomStream(room_id, self.outbox, self.runtime.db)
        # Join the room's feed before reading last_seq: anything committed later is then sure to arrive.
        await self.feeds.add(stream)
        try:
            if after_seq is None:
                async with session_scope(self.runtime.db) as session:
                    after_seq = await session.scalar(select(Room.last_seq).where(Room.id == room_id))
        except BaseException:
            await self.feeds.remove(stream)
            raise
        stream.last_seq = after_seq or 0
        self.rooms[room_id] = stream
        self.send({"type": "subscribed", "room_id": room_id})
        try:
            await self.presence(room_id, +1)
        finally:
            stream.start()  # the replay, then live frames, follow `subscribed` and the presence frames

    async def unsubscribe(self, room_id: UUID) -> None:
        stream = self.rooms.pop(room_id, None)
        if stream is None:
            return
        try:
            await self.feeds.remove(stream)
            await stream.stop()
        finally:
            await self.presence(room_id, -1)

    async def presence(self, room_id: UUID, change: int) -> None:
        """Count this socket in or out of the room; announce the user's first and last socket."""
        user = str(self.user.id)
        if change > 0:
            online = await self.tracker.join(room_id, self.user.id)
            for other in online.keys() - {user}:
                self.send(presence_frame(room_id, other, "online"))
            if online[user] == 1:
                await self.runtime.room_bus.publish(room_id, presence_frame(room_id, user, "online"))
        elif user not in await self.tracker.leave(room_id, self.user.id):
            await self.runtime.room_bus.publish(room_id, presence_frame(room_id, user, "offline"))

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
    feeds: NamedDependency[RoomFeeds],
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
    outbox = Outbox(socket, runtime.settings.ws_backlog_limit)
    connection = Connection(socket, runtime, feeds, assistant, presence, user, _loop_time_of(token), outbox)
    try:
        async with (
            channels.start_subscription(user_channel(user.id)) as notifications,
            notifications.run_in_background(connection.notify, join=False),
        ):
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
        outbox.close(CLOSE_UNAUTHORIZED, "access token expired")
        await outbox.closed()
    finally:
        try:
            await connection.close()
        finally:
            await outbox.aclose()
