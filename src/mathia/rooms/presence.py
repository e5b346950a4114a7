"""Who is online in each room, across processes, surviving a process that dies.

Each web process counts its own sockets per room and user, in the room's Redis hash under
the field "{user}:{process}", and renews its heartbeat in ALIVE every third of
`presence_ttl`. Counts of a process whose heartbeat is older than that are ignored; the
first live process to notice removes them and announces the users it leaves offline, so a
killed process does not keep its users online for ever. A process that finds its own heartbeat
gone (it was cut off from Redis for longer than that, or Redis lost its data) counts its
sockets again under a new id and announces their users online."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mathia.rooms.realtime import RoomBus
from mathia.tasks import cancel

log = logging.getLogger(__name__)

ALIVE = "mathia:presence:alive"  # sorted set: process id -> time of its last heartbeat


def presence_frame(room_id: uuid.UUID | str, user_id: uuid.UUID | str, status: str) -> dict[str, str]:
    return {"type": "presence", "room_id": str(room_id), "user_id": str(user_id), "status": status}


def _text(value: object) -> str:
    """A Redis reply as text (this client returns bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _room_key(room_id: uuid.UUID | str) -> str:
    return f"mathia:presence:{room_id}"


def _rooms_of(process: str) -> str:
    """The rooms where `process` has counted sockets, for whoever cleans up after it."""
    return f"mathia:presence:rooms:{process}"


class Presence:
    def __init__(self, redis: Redis, bus: RoomBus, ttl: float) -> None:
        self.redis = redis
        self.bus = bus
        self.ttl = ttl
        self.process = uuid.uuid4().hex
        self.sockets: dict[uuid.UUID, Counter[uuid.UUID]] = {}  # this process's, per room and user
        self._heartbeat: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()  # counting a socket and counting them all again take turns

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._keep_beating())

    async def aclose(self) -> None:
        await cancel(self._heartbeat)
        with contextlib.suppress(RedisError):
            await self.redis.zadd(ALIVE, {self.process: 0})  # reaped at once: nothing to wait for

    async def beat(self) -> None:
        async with self._writing:
            if self.sockets and await self.redis.zscore(ALIVE, self.process) is None:
                await self._come_back()
            await self.redis.zadd(ALIVE, {self.process: time.time()})

    async def _come_back(self) -> None:
        """Count this process's sockets again. Under a new id: whoever reaped the old one may
        still be deleting the old id's counts."""
        log.warning("presence: this process's heartbeat was gone; counting its sockets again")
        self.process = uuid.uuid4().hex
        await self.redis.zadd(ALIVE, {self.process: time.time()})
        for room_id, users in self.sockets.items():
            await self.redis.sadd(_rooms_of(self.process), str(room_id))
            for user_id, sockets in users.items():
                await self.redis.hset(_room_key(room_id), f"{user_id}:{self.process}", sockets)
                await self.bus.publish(room_id, presence_frame(room_id, user_id, "online"))

    async def _keep_beating(self) -> None:
        while True:  # outlives Redis outages: the app starts, and /health/ready says what is down
            try:
                await self.beat()
                await self.reap()
            except RedisError as exc:
                log.warning("presence heartbeat failed (%s); retrying", exc)
            await asyncio.sleep(self.ttl / 3)

    async def online(self, room_id: uuid.UUID | str) -> Counter[str]:
        """Sockets per user in the room, on live processes."""
        fields = await self.redis.hgetall(_room_key(room_id))
        alive = {_text(p) for p in await self.redis.zrangebyscore(ALIVE, time.time() - self.ttl, "+inf")}
        counts: Counter[str] = Counter()
        for field, sockets in fields.items():
            user, _, process = _text(field).partition(":")
            if process in alive and int(sockets) > 0:
                counts[user] += int(sockets)
        return counts

    async def join(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Counter[str]:
        """Count a socket of `user_id` in the room; who is online afterwards."""
        async with self._writing:
            users = self.sockets.setdefault(room_id, Counter())
            if not users:
                await self.redis.sadd(_rooms_of(self.process), str(room_id))
            users[user_id] += 1
            await self.redis.hincrby(_room_key(room_id), f"{user_id}:{self.process}", 1)
        return await self.online(room_id)

    async def leave(self, room_id: uuid.UUID, user_id: uuid.UUID) -> Counter[str]:
        """Uncount a socket of `user_id` in the room; who is online afterwards."""
        async with self._writing:
            key, field = _room_key(room_id), f"{user_id}:{self.process}"
            if await self.redis.hincrby(key, field, -1) <= 0:
                await self.redis.hdel(key, field)
            users = self.sockets[room_id]
            users[user_id] -= 1
            if users[user_id] <= 0:
                del users[user_id]
            if not users:
                del self.sockets[room_id]
                await self.redis.srem(_rooms_of(self.process), str(room_id))
        return await self.online(room_id)

    async def reap(self) -> None:
        """Remove the counts of processes that stopped beating; announce who they leave offline."""
        for dead in await self.redis.zrangebyscore(ALIVE, "-inf", time.time() - self.ttl):
            process = _text(dead)
            if not await self.redis.zrem(ALIVE, process):
                continue  # another process is cleaning up after this one
            for room in await self.redis.smembers(_rooms_of(process)):
                await self._forget(process, _text(room))
            await self.redis.delete(_rooms_of(process))

    async def _forget(self, process: str, room_id: str) -> None:
        key = _room_key(room_id)
        fields = [f for f in map(_text, await self.redis.hkeys(key)) if f.endswith(f":{process}")]
        if not fields:
            return
        await self.redis.hdel(key, *fields)
        online = await self.online(room_id)
        for user in {f.partition(":")[0] for f in fields} - online.keys():
            await self.bus.publish(uuid.UUID(room_id), presence_frame(room_id, user, "offline"))
