"""WebSocket fan-out: one room, many subscribed sockets, a few senders, one or more servers.

    uv run python -m bench.ws_fanout --spawn 1 [--sockets 100] [--senders 4] [--rate 100 200] [--seconds 10]
    uv run python -m bench.ws_fanout --url http://host-a:8000 http://host-b:8000 ...

`--spawn N` creates a scratch PostgreSQL database next to MATHIA_BENCH_POSTGRES (default:
the local test server), starts N `mathia serve` processes on it and on MATHIA_BENCH_REDIS
(default redis://127.0.0.1:6379/0), all with MATHIA_SEND_RATE_LIMIT raised so that the
per-user send limit does not shape the load, and drops the database afterwards. With
`--url`, the servers are yours: start them with a high MATHIA_SEND_RATE_LIMIT.

The bench signs up one user per socket, puts them all in one room and spreads the
sockets over the servers round-robin. The first `--senders` sockets send at a fixed
total rate (open loop: sends do not wait for deliveries); every `message.new` that
any socket receives is a delivery. Latency is send-to-deliver, both stamped with
time.perf_counter() in this process and matched by the message's client_id. Each
rate runs for `--seconds` (the first second is warm-up, not counted), then waits at
most `--drain` seconds for the stragglers; what never arrives is reported as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import websockets
from tests.client import Member, sign_up
from tests.processes import mathia_server
from websockets.asyncio.client import ClientConnection

POSTGRES = os.environ.get("MATHIA_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MATHIA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
HIGH_LIMIT = "1000000"
WARMUP = 1.0

_decode = msgspec.json.decode
_encode = msgspec.json.encode


# --- shared with bench/ai_stream.py -----------------------------------------------------------
@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database; yields its asyncpg SQLAlchemy URL, drops it after."""
    name = f"mathia_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES.replace("+asyncpg", "", 1))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextmanager
def spawned(count: int, database_url: str, **env: str) -> Iterator[list[str]]:
    """`count` `mathia serve` processes sharing one database, Redis and secret; yields their URLs.

    They start one after the other, so only the first one runs the migrations."""
    logs = Path(tempfile.mkdtemp(prefix="mathia-bench-"))
    shared = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "MATHIA_SECRET_KEY": secrets.token_urlsafe(32),
        "MATHIA_DATA_DIR": str(logs),
        "MATHIA_SEND_RATE_LIMIT": HIGH_LIMIT,
        **env,
    }
    with ExitStack() as stack:
        urls = [stack.enter_context(mathia_server(shared, logs / f"serve-{i}.log")) for i in range(count)]
        print(f"servers: {', '.join(urls)} (logs in {logs})")
        yield urls


async def sign_up_many(base_url: str, count: int, prefix: str) -> list[Member]:
    """Sign up `count` users, four at a time (password hashing is deliberately slow)."""
    gate = asyncio.Semaphore(4)

    async def one(i: int) -> Member:
        async with gate:
            return await sign_up(base_url, f"{prefix}{i}")

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def team(base_url: str, members: Sequence[Member], name: str) -> str:
    """A workspace owned by the first member with one public room that all of them joined."""
    owner = members[0]
    workspace = await owner.workspace(name)
    room = await owner.room(workspace, name)
    for member in members[1:]:
        await owner.invite(workspace, member)
        response = await member.post(f"/api/rooms/{room}/join")
        assert response.status_code == 200, response.text
    return room


async def connect(base_url: str, member: Member, room: str, deflate: bool = True) -> ClientConnection:
    """A socket subscribed to `room`, with the `subscribed` answer consumed. Like browsers, it
    offers permessage-deflate unless told not to."""
    url = base_url.replace("http", "ws", 1) + f"/ws?token={member.access_token}"
    connection = await websockets.connect(url, max_size=None, compression="deflate" if deflate else None)
    await connection.send(_encode({"type": "subscribe", "room_id": room}))
    while _decode(await connection.recv())["type"] != "subscribed":
        pass
    return connection


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and max, in milliseconds."""
    if len(values) < 2:
        return (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000, max(values) * 1000


def machine() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _servers_schedstat() -> tuple[int, int, int]:
    """Nanoseconds on a CPU and runnable but waiting for one, summed over the event-loop
    threads of the `mathia serve` processes this bench started, and their count (Linux)."""
    running = waiting = count = 0
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError):
                if b"mathia\0serve" in Path(f"/proc/{child}/cmdline").read_bytes():
                    on_cpu, queued, _ = Path(f"/proc/{child}/schedstat").read_text().split()
                    running, waiting, count = running + int(on_cpu), waiting + int(queued), count + 1
    return running, waiting, count


@dataclass
class Usage:
    """CPU use from now on: this process's, and the spawned servers' (time on a CPU, and time
    ready to run but waiting for a core taken by something else)."""

    wall: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)
    servers: tuple[int, int, int] = field(default_factory=_servers_schedstat)

    def summary(self) -> str:
        wall = time.perf_counter() - self.wall
        text = f"bench client CPU {(time.process_time() - self.cpu) / wall:.0%}"
        running, waiting, count = _servers_schedstat()
        if count:
            per_server = wall * 1e9 * count
            text += (
                f"; each server on a CPU {(running - self.servers[0]) / per_server:.0%} of the time, "
                f"waiting for one {(waiting - self.servers[1]) / per_server:.0%}"
            )
        return text


# --- the fan-out run ----------------------------------------------------------------------------
@dataclass
class Run:
    sockets: int
    sent: dict[str, float] = field(default_factory=dict)  # client_id -> send time
    counted: set[str] = field(default_factory=set)  # sent after the warm-up
    latencies: list[float] = field(default_factory=list)
    deliveries: int = 0
    last_delivery: float = 0.0
    errors: list[Any] = field(default_factory=list)
    sending_over: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expected(self) -> int:
        return len(self.counted) * self.sockets

    def delivered(self, frame: dict[str, Any], at: float) -> None:
        client_id = frame["message"].get("client_id")
        if client_id not in self.counted:
            return
        self.latencies.append(at - self.sent[client_id])
        self.deliveries += 1
        self.last_delivery = at
        if self.deliveries >= self.expected and not self.done.is_set() and self.sending_over:
            self.done.set()


async def read(connection: ClientConnection, runs: list[Run]) -> None:
    """Every frame of one socket, for as long as it is open; deliveries go to the current run."""
    async for raw in connection:
        at = time.perf_counter()
        frame = _decode(raw)
        if frame["type"] == "message.new":
            runs[-1].delivered(frame, at)
        elif frame["type"] == "error":
            runs[-1].errors.append(frame)


async def send(connection: ClientConnection, room: str, run: Run, rate: float, seconds: float) -> None:
    """Open loop: message k leaves at start + k / rate, whatever happened to the earlier ones."""
    start = time.perf_counter()
    k = 0
    while (due := start + k / rate) < start + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        client_id = uuid.uuid4().hex
        run.sent[client_id] = now = time.perf_counter()
        if now - start >= WARMUP:
            run.counted.add(client_id)
        frame = {"type": "message.send", "room_id": room, "body": f"bench {k}", "client_id": client_id}
        await connection.send(_encode(frame))
        k += 1


async def fan_out(args: argparse.Namespace, urls: Sequence[str]) -> None:
    print(
        f"{len(urls)} server(s), {args.sockets} sockets in one room, {args.senders} sender(s), "
        f"permessage-deflate {'offered' if args.deflate else 'off'}; {machine()}"
    )
    members = await sign_up_many(urls[0], args.sockets, "Fan")
    room = await team(urls[0], members, f"fanout-{secrets.token_hex(3)}")
    connections = [
        await connect(urls[i % len(urls)], member, room, args.deflate) for i, member in enumerate(members)
    ]
    runs = [Run(args.sockets)]
    readers = [asyncio.create_task(read(c, runs)) for c in connections]
    await asyncio.sleep(1)  # let the presence frames of 100 joins settle
    print(f"set up; sending; {machine()}", flush=True)
    try:
        for rate in args.rate:
            run = Run(args.sockets)
            runs.append(run)
            usage = Usage()
            await asyncio.gather(
                *(
                    send(connections[i], room, run, rate / args.senders, args.seconds)
                    for i in range(args.senders)
                )
            )
            run.sending_over = True
            if run.deliveries < run.expected:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.done.wait(), args.drain)
            report(run, rate, args, usage)
    finally:
        for connection in connections:
            await connection.close()
        await asyncio.gather(*readers, return_exceptions=True)
        for member in members:
            await member.http.aclose()


def report(run: Run, rate: float, args: argparse.Namespace, usage: Usage) -> None:
    counted = [run.sent[c] for c in run.counted]
    window = (run.last_delivery - min(counted)) if counted and run.deliveries else float("nan")
    p50, p99, worst = quantiles(run.latencies)
    lost = run.expected - run.deliveries
    print(
        f"offered {rate:.0f} msg/s -> delivered {run.deliveries / window:,.0f} msg/s "
        f"({len(run.counted)} sent x {args.sockets} sockets, {lost} lost); "
        f"send-to-deliver p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms; "
        f"{usage.summary()}; {machine()}"
        + (f"; {len(run.errors)} error frames, first {run.errors[0]}" if run.errors else "")
    )


async def main(args: argparse.Namespace) -> None:
    if args.url:
        await fan_out(args, args.url)
        return
    async with scratch_database() as database_url:
        with spawned(args.spawn, database_url) as urls:
            await fan_out(args, urls)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", nargs="+", help="base URLs of running servers (high send rate limit)")
    where.add_argument("--spawn", type=int, help="start this many `mathia serve` processes")
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rate", type=float, nargs="+", default=[100.0], help="total msg/s, one run each")
    parser.add_argument("--seconds", type=float, default=10.0, help="sending time per rate")
    parser.add_argument("--drain", type=float, default=10.0, help="longest wait for late deliveries")
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="do not offer permessage-deflate"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
