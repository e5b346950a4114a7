"""Assistant streaming: what the server adds between the model's tokens and the members' screens.

    uv run python -m bench.ai_stream [--spawn 1] [--rooms 10] [--members 10] [--generations 50]
                                     [--words 100] [--pace 0.04] [--preparations N]

A fake Anthropic API (tests/fakes/anthropic.py) runs in a child process and streams
`--words` text deltas per answer, one every `--pace` seconds. `--spawn N` `mathia serve`
processes (scratch PostgreSQL database, local Redis, as in bench/ws_fanout.py) use it as
their model, with the send and AI rate limits raised. The bench signs up `--rooms` x
`--members` users, one workspace and room per team, connects every member's socket (spread
over the servers round-robin), then sends all `--generations` "@mathia" messages at once,
spread over the rooms and their members, and reads every frame on every socket.

What is measured, per answer and per member socket (all times are time.perf_counter(),
CLOCK_MONOTONIC, so the fake's stamps and the bench's compare across the two processes):

- added first-token time: the socket's first `ai.delta` minus the moment the fake handed
  its first text delta (content_block_delta) to its HTTP server. The fake's `first_byte_at`
  (its message_start frame) comes `--pace` earlier by construction, so it is not the
  reference; it is printed for comparison.
- added gap: for each later delta, the socket's gap since the previous delta minus the
  fake's gap between the same two deltas. Deltas that reach a socket together in one
  frame (a server may merge them) share that frame's arrival time.
- before the model: from the bench sending the mention to the fake receiving the request
  (rate limits, history query and prompt building in the server), for information.

Answers are matched to the fake's requests by a unique word in each mention: the fake's
first text delta repeats it, so each `message_id` gets its request's token times.

The two measuring processes, the fake and this client, run without the cyclic garbage
collector while answers stream: a collection pauses a process for milliseconds, and a
pause of either would be counted as time the server added.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import multiprocessing
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from multiprocessing.connection import Connection
from typing import Any

import httpx
import msgspec
from bench.ws_fanout import (
    HIGH_LIMIT,
    Usage,
    connect,
    machine,
    quantiles,
    scratch_database,
    sign_up_many,
    spawned,
    team,
)
from litestar import Request, Response
from tests.fakes.anthropic import FakeAnthropic, Reply

TAG = re.compile(r"\btag([0-9a-f]{12})\b")
_tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="untagged")


class TaggedFake(FakeAnthropic):
    """The fake, answering `default` with the mention's tag as its first text delta."""

    async def handle(self, request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            messages = msgspec.json.decode(await request.body())["messages"]
            # The mention is the last line of the last turn (consecutive turns are merged).
            _tag.set(TAG.findall(messages[-1]["content"].splitlines()[-1])[-1])
        except (msgspec.DecodeError, KeyError, IndexError, TypeError, AttributeError):
            pass  # the fake itself answers what is wrong with the request
        return await super().handle(request)

    def next_scenario(self) -> Any:
        scenario = super().next_scenario()
        if isinstance(scenario, Reply):
            chunks = [f" tag{_tag.get()}", *scenario.chunks[1:]]
            scenario = Reply(chunks=chunks, pace=scenario.pace)
        return scenario


def run_fake(words: int, pace: float, pipe: Connection) -> None:
    """Child process: serve the fake until the parent says stop."""
    gc.disable()  # a short-lived process: its pauses would count as the server's
    fake = TaggedFake(default=Reply.long(words=words, pace=pace))
    with fake.running() as url:
        pipe.send((url, fake.api_key))
        pipe.recv()


@dataclass
class Seen:
    """What the bench saw: per (socket, message_id), the arrival time of each ai.delta."""

    # per (socket, message_id): each ai.delta's arrival time and the answer's length so far
    deltas: dict[tuple[int, str], list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    tags: dict[str, str] = field(default_factory=dict)  # message_id -> tag
    done: int = 0
    replayed: int = 0  # answers that arrived as message.new
    errors: list[Any] = field(default_factory=list)
    all_done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


async def read(index: int, connection: Any, seen: Seen) -> None:
    async for raw in connection:
        at = time.perf_counter()
        frame = msgspec.json.decode(raw)
        kind = frame["type"]
        if kind == "ai.delta":
            frames, text = seen.deltas[(index, frame["message_id"])], frame["text"]
            if not frames and (match := TAG.search(text)):
                seen.tags[frame["message_id"]] = match.group(1)
            frames.append((at, (frames[-1][1] if frames else 0) + len(text)))
        elif kind in ("ai.done", "message.new") and frame["message"]["sender"]["kind"] == "assistant":
            # An answer ends with its stored message: `ai.done`, or `message.new` when the
            # server read it from the database (its frame came over 0.1 s after a later one's).
            seen.done += 1
            seen.replayed += kind == "message.new"
            if seen.done >= seen.expected:
                seen.all_done.set()
        elif kind in ("ai.error", "error"):
            seen.errors.append(frame)


async def bench(args: argparse.Namespace, urls: Sequence[str], fake_url: str) -> None:
    print(
        f"{len(urls)} server(s); {args.generations} generations in {args.rooms} rooms x "
        f"{args.members} members; {args.words} deltas each, one every {args.pace * 1000:.0f} ms; "
        f"permessage-deflate {'offered' if args.deflate else 'off'}; {machine()}"
    )
    teams = []
    for r in range(args.rooms):
        members = await sign_up_many(urls[0], args.members, f"Room{r}m")
        teams.append((members, await team(urls[0], members, f"stream-{r}-{secrets.token_hex(3)}")))
    sockets = [
        (await connect(urls[i % len(urls)], member, room, args.deflate), room)
        for i, (member, room) in enumerate((m, room) for members, room in teams for m in members)
    ]
    seen = Seen(expected=args.generations * args.members)
    readers = [asyncio.create_task(read(i, s, seen)) for i, (s, _) in enumerate(sockets)]
    await asyncio.sleep(1)  # let the presence frames settle
    print(f"set up; sending the mentions; {machine()}", flush=True)
    sent: dict[str, float] = {}  # tag -> when its mention left
    try:
        mentions = []
        for g in range(args.generations):
            # Generation g goes to room g % rooms, asked by a different member each time.
            r = g % args.rooms
            socket, room = sockets[r * args.members + (g // args.rooms) % args.members]
            tag = secrets.token_hex(6)
            body = f"@mathia summarise the thread, tag{tag}"
            mentions.append((socket, tag, {"type": "message.send", "room_id": room, "body": body}))
        usage = Usage()
        gc.collect()
        gc.disable()  # enabled again in `finally`: this client's pauses would count as the server's
        for socket, tag, frame in mentions:
            sent[tag] = time.perf_counter()
            await socket.send(msgspec.json.encode(frame))
        timeout = args.words * args.pace * 3 + 60
        try:
            await asyncio.wait_for(seen.all_done.wait(), timeout)
        except TimeoutError:
            print(f"only {seen.done} of {seen.expected} answers ended in {timeout:.0f} s")
        print(f"streaming took {time.perf_counter() - usage.wall:.1f} s; {usage.summary()}")
    finally:
        gc.enable()
        for socket, _ in sockets:
            await socket.close()
        await asyncio.gather(*readers, return_exceptions=True)
        for members, _ in teams:
            for member in members:
                await member.http.aclose()
    async with httpx.AsyncClient(timeout=30) as http:
        exchanges = (await http.get(f"{fake_url}/_fake/exchanges")).json()
    report(args, seen, sent, exchanges)


def arrivals(frames: list[tuple[float, int]], ends: list[int]) -> list[float] | None:
    """When each token reached the socket: the arrival of the first frame whose text covers its
    end (a server may send several tokens in one frame). None if the text is not all there."""
    if not frames or frames[-1][1] != ends[-1]:
        return None
    times, f = [], 0
    for end in ends:
        while frames[f][1] < end:
            f += 1
        times.append(frames[f][0])
    return times


def report(args: argparse.Namespace, seen: Seen, sent: dict[str, float], exchanges: list[Any]) -> None:
    by_tag = {}
    for exchange in exchanges:
        for line in reversed(exchange["body"]["messages"][-1]["content"].splitlines()):
            if match := TAG.search(line):
                by_tag[match.group(1)] = exchange
                break
    first, first_byte, gaps, before = [], [], [], []
    incomplete = 0
    for (_, message_id), frames in seen.deltas.items():
        tag = seen.tags[message_id]
        tokens = by_tag[tag]["token_times"]
        # The fake's text: the tag, then " word1", " word2"... (Reply.long with its first word replaced).
        ends = list(accumulate([len(f" tag{tag}"), *(len(f" word{i}") for i in range(1, len(tokens)))]))
        times = arrivals(frames, ends)
        if times is None:
            incomplete += 1
            continue
        first.append(times[0] - tokens[0])
        first_byte.append(times[0] - by_tag[tag]["first_byte_at"])
        gaps += [(times[i] - times[i - 1]) - (tokens[i] - tokens[i - 1]) for i in range(1, len(times))]
    for tag, at in sent.items():
        if tag in by_tag:
            before.append(by_tag[tag]["received_at"] - at)
    rows = [
        ("added first-token time (fake's first text delta -> socket's first ai.delta)", first),
        ("  same, from the fake's first byte (message_start; includes one pace)", first_byte),
        ("added gap between deltas (socket gap - fake gap)", gaps),
        ("mention sent -> model request received (server work before the model)", before),
    ]
    print(
        f"{len(by_tag)} model requests, {len(seen.deltas)} streams read ({incomplete} incomplete), "
        f"{seen.replayed} answers replayed as message.new, "
        f"{len(seen.errors)} error frames{f', first {seen.errors[0]}' if seen.errors else ''}"
    )
    for label, values in rows:
        p50, p99, worst = quantiles(values)
        print(f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms ({len(values)} samples)")
    print(machine())


async def main(args: argparse.Namespace) -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    fake = context.Process(target=run_fake, args=(args.words, args.pace, child), daemon=True)
    fake.start()
    try:
        fake_url, api_key = parent.recv()
        env = {
            "ANTHROPIC_API_KEY": api_key,
            "ANTHROPIC_BASE_URL": fake_url,
            "MATHIA_AI_USER_RATE_LIMIT": HIGH_LIMIT,
            "MATHIA_AI_WORKSPACE_RATE_LIMIT": HIGH_LIMIT,
            **({"MATHIA_AI_CONCURRENT_PREPARATIONS": str(args.preparations)} if args.preparations else {}),
        }
        async with scratch_database() as database_url:
            with spawned(args.spawn, database_url, **env) as urls:
                await bench(args, urls, fake_url)
    finally:
        parent.send("stop")
        fake.join(timeout=10)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--spawn", type=int, default=1, help="`mathia serve` processes")
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--words", type=int, default=100, help="text deltas per answer")
    parser.add_argument("--pace", type=float, default=0.04, help="seconds between text deltas")
    parser.add_argument(
        "--preparations",
        type=int,
        help="the server's cap on mentions prepared at once (default: its own setting)",
    )
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="do not offer permessage-deflate"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
