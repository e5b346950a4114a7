"""Room frames, to the sockets of this process: its own as they are published on its room bus,
the other processes' from Redis.

A process subscribes to a room's Redis channel once, however many of its sockets have the room
open: the room's feed task reads each frame once and, unless this process published it, puts it
on the outbox of every socket that has the room open, without waiting for any of them. Each
socket's outbox has one writer task, which writes its frames in the order they were put, so a
slow client delays only itself, and a frame is decoded once per process, not once per socket.

Messages (frames with a `seq`) reach each socket in strict seq order, never twice: a frame
that skips ahead (another process published its later message first) holds the room's frames
for that socket until the messages in between come, live or else from the database."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any
from uuid import UUID

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import WebSocket
from litestar.channels import ChannelsPlugin, Subscriber
from litestar.exceptions import WebSocketDisconnect

from mathia.db import session_scope
from mathia.rooms import services
from mathia.rooms.realtime import RoomBus, room_channel, split_room_message
from mathia.tasks import cancel

log = logging.getLogger(__name__)

CLOSE_INTERNAL_ERROR = 1011
CLOSE_TOO_SLOW = 1013  # "try again later": reconnect and subscribe with after_seq
_REPLAY_BATCH = 200
_encode = msgspec.json.Encoder().encode


def encode_text(frame: Any) -> str:
    return _encode(frame).decode()


class _SeqOnly(msgspec.Struct):
    seq: int


class _Head(msgspec.Struct):
    """Just enough of a published frame to order it; the rest is forwarded untouched."""

    type: str
    message: _SeqOnly | None = None


_decode_head = msgspec.json.Decoder(_Head).decode


class Outbox:
    """The frames waiting to be written to one socket, and the task that writes them in order.

    `put` never waits. A client that falls more than `limit` characters of frames behind is
    closed with 1013 instead of being queued for without end."""

    def __init__(self, socket: WebSocket[Any, Any, Any], limit: int) -> None:
        self._socket = socket
        self.limit = limit
        self._frames: deque[str] = deque()
        self._size = 0
        self._close: tuple[int, str] | None = None  # close the socket once the frames before are written
        self._waiting = asyncio.Event()  # there is something to write, or to close
        self._empty = asyncio.Event()
        self._empty.set()
        self._writer = asyncio.create_task(self._write())

    def put(self, text: str) -> None:
        if self._close is not None or self._writer.done():
            return
        self._size += len(text)
        if self._size > self.limit:
            self.too_slow()
            return
        self._frames.append(text)
        self._empty.clear()
        self._waiting.set()

    def too_slow(self) -> None:
        """Drop what is waiting and close the socket: the client can reconnect and catch up."""
        self._frames.clear()
        self._size = 0
        self.close(CLOSE_TOO_SLOW, f"too slow: over {self.limit} characters of frames waiting")

    def close(self, code: int, reason: str) -> None:
        """Write what is waiting, then close the socket; what is put after this is dropped."""
        if self._close is None:
            self._close = (code, reason)
            self._waiting.set()

    async def room(self) -> None:
        """For a producer that can wait (a replay): wait while over half the limit is waiting."""
        if self._size > self.limit // 2:
            await self._empty.wait()

    async def closed(self) -> None:
        """Wait until the writer has closed the socket (after `close`) or the client has gone."""
        await asyncio.wait({self._writer})

    async def aclose(self) -> None:
        """Stop writing (the connection is over)."""
        await cancel(self._writer)

    async def _write(self) -> None:
        try:
            while True:
                await self._waiting.wait()
                while self._frames:
                    text = self._frames.popleft()
                    self._size -= len(text)
                    await self._socket.send_data(text)
                if self._close is not None:
                    await self._socket.close(*self._close)
                    return
                self._waiting.clear()
                self._empty.set()
        except (OSError, WebSocketDisconnect):  # uvicorn's ClientDisconnected is an OSError
            pass  # the client hung up; its receive loop ends the connection
        except Exception:
            log.exception("writing to a socket failed")


class RoomStream:
    """One room on one socket: puts the room's frames on the socket's outbox, messages in seq
    order and each once. It holds the frames that arrive until `start`, then replays what is
    stored after `last_seq`, then sends the held frames, then goes live.

    A live message that skips ahead (another process published a later message first) holds
    the room's frames while the messages before it are awaited: live for up to `GAP_WAIT`,
    then from the database. Each missing message that comes live in time goes out as it came
    (an answer's `ai.done` stays one) at no database read."""

    GAP_WAIT = 0.1  # seconds: frames of two busy processes cross by a few milliseconds

    def __init__(self, room_id: UUID, outbox: Outbox, db: SQLAlchemyAsyncConfig) -> None:
        self.room_id = room_id
        self.last_seq = 0
        self._outbox = outbox
        self._db = db
        # Frames that arrived while stored messages were awaited or replayed; None once live.
        self._held: deque[tuple[str, int | None]] | None = deque()
        self._held_size = 0  # characters, bounded like the outbox's
        self._gap: asyncio.Future[None] | None = None  # pending while a gap is awaited live
        self._catching_up: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Replay the stored messages after last_seq, then the held frames."""
        self._catching_up = asyncio.create_task(self._catch_up(None))

    async def stop(self) -> None:
        await cancel(self._catching_up)

    def offer(self, text: str, seq: int | None) -> None:
        if self._held is None:
            if self._place(text, seq):
                return
            self._held = deque()
            self._gap = asyncio.get_running_loop().create_future()
            self._catching_up = asyncio.create_task(self._catch_up(self._gap))
        elif self._gap is not None and seq is not None and seq <= self.last_seq + 1:
            self._place(text, seq)  # a missing message came live (or a late copy, dropped)
            self._place_held()
            if not self._held:
                self._gap.set_result(None)
                self._gap = None
            return
        self._held.append((text, seq))
        self._held_size += len(text)
        if self._held_size > self._outbox.limit:  # a busy room, and a replay the client is slow to take
            self._held.clear()
            self._held_size = 0
            self._outbox.too_slow()

    def _place(self, text: str, seq: int | None) -> bool:
        """Put a frame on the outbox unless messages before it are missing (then False)."""
        if seq is None:
            self._outbox.put(text)
        elif seq > self.last_seq + 1:
            return False
        elif seq == self.last_seq + 1:
            self._put_message(text, seq)
        return True  # a seq at or below last_seq was sent already

    def _place_held(self) -> None:
        """Put the held frames on the outbox, in order, up to the first that skips ahead."""
        assert self._held is not None
        while self._held and self._place(*self._held[0]):
            text, _ = self._held.popleft()
            self._held_size -= len(text)

    def _put_message(self, text: str, seq: int) -> None:
        self._outbox.put(text)
        self.last_seq = seq

    async def _catch_up(self, gap: asyncio.Future[None] | None) -> None:
        """Replay from last_seq (no `gap`), or wait for `gap`, which may be filled already: the
        missing frame can come right behind the one that skipped ahead, before this task runs."""
        assert self._held is not None
        try:
            if gap is None:
                await self._replay()
            else:
                await asyncio.wait({gap}, timeout=self.GAP_WAIT)
                self._gap = None  # from here on, what is still missing comes from the database
            self._place_held()
            while self._held:  # the first held frame is a message that skips ahead: read its gap
                text, seq = self._held.popleft()
                self._held_size -= len(text)
                assert seq is not None
                await self._replay(until=seq - 1)
                self._put_message(text, seq)
                self._place_held()
            self._held = None
        except Exception:
            log.exception("replaying room %s failed", self.room_id)
            self._outbox.close(CLOSE_INTERNAL_ERROR, "could not replay the room's messages")

    async def _replay(self, until: int | None = None) -> None:
        """Put the stored messages after last_seq (up to `until`) on the outbox, a page at a time."""
        while True:
            async with session_scope(self._db) as session:
                page = await services.messages_page(
                    session,
                    self.room_id,
                    after=self.last_seq,
                    before=None if until is None else until + 1,
                    limit=_REPLAY_BATCH,
                )
            for message in page.items:
                await self._outbox.room()  # a long history is never all in memory at once
                self._put_message(encode_text({"type": "message.new", "message": message}), message.seq)
            if not page.has_more:
                return


class _Feed:
    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.streams: set[RoomStream] = set()
        self.task: asyncio.Task[None] | None = None


class RoomFeeds:
    """The rooms this process's sockets have open: one Redis subscription and one feed task each,
    for the frames of other processes; the frames this process publishes on `bus` come straight."""

    def __init__(self, channels: ChannelsPlugin, bus: RoomBus) -> None:
        self._channels = channels
        self._origin = bus.origin
        bus.deliver_here = self.deliver
        self._feeds: dict[UUID, _Feed] = {}
        self._lock = asyncio.Lock()  # subscribing and unsubscribing a room's channel take turns

    async def add(self, stream: RoomStream) -> None:
        """Offer the room's frames to `stream` from now on (its Redis subscription is made)."""
        async with self._lock:
            feed = self._feeds.get(stream.room_id)
            if feed is None:
                feed = _Feed(await self._channels.subscribe(room_channel(stream.room_id)))
                feed.task = asyncio.create_task(self._run(feed))
                self._feeds[stream.room_id] = feed
            feed.streams.add(stream)

    async def remove(self, stream: RoomStream) -> None:
        async with self._lock:
            feed = self._feeds.get(stream.room_id)
            if feed is None or stream not in feed.streams:
                return
            feed.streams.remove(stream)
            if not feed.streams:
                del self._feeds[stream.room_id]
                # Ends the feed's task.
                await self._channels.unsubscribe(feed.subscriber, room_channel(stream.room_id))

    def deliver(self, room_id: UUID, data: bytes) -> None:
        """A frame this process published: offer it to the room's streams here."""
        if (feed := self._feeds.get(room_id)) is not None:
            _offer(feed.streams, data)

    async def _run(self, feed: _Feed) -> None:
        async for event in feed.subscriber.iter_events():
            origin, data = split_room_message(event)
            if origin != self._origin:  # this process's own frames were delivered as published
                _offer(feed.streams, data)


def _offer(streams: set[RoomStream], data: bytes) -> None:
    try:
        head = _decode_head(data)
    except msgspec.DecodeError:
        log.error("dropped a malformed room frame: %r", data[:200])
        return
    text = data.decode()
    seq = None if head.message is None else head.message.seq
    for stream in streams:
        try:
            stream.offer(text, seq)
        except Exception:  # a bug for one socket must not silence the room for the others
            log.exception("offering a frame of room %s failed", stream.room_id)
