"""CPU per WebSocket frame sent: what the server pays for each member of each `ai.delta`.

Measured for the protocol `mathia serve` uses (uvicorn's `auto`: websockets' sans-I/O one) and,
as the baseline, websockets' legacy API, uvicorn's `websockets` protocol.

    uv run python -m bench.ws_send [--sockets 10] [--frames 5000] [--pace 0.001] [--rounds 3]

For each protocol in turn (alternating, `--rounds` times), a child process serves a bare ASGI
app with uvicorn, set up as `mathia serve` sets it up (`WEBSOCKET_OPTIONS`). `--sockets`
clients connect; the app then sends each of them `--frames` frames of an `ai.delta`'s size,
one socket after the other for each frame, as the gateway's writers do for a room's members,
a frame to every socket each `--pace` seconds (the assistant bench's default load is 12,500
frames a second), so that the clients keep up, as they mostly do in the gateway. The child
reports its own CPU time (user and system, `getrusage`) over the sends only, divided by the
frames sent: what one frame to one socket costs the server, system call included.
The clients read in this process and do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import websockets

from mathia.cli import WEBSOCKET_OPTIONS
from mathia.connectors.testing import serve as loopback_server

PROTOCOLS = ("websockets", "auto")
FRAME = (
    '{"type":"ai.delta","room_id":"0193a1b2-7c3d-7e4f-8a5b-6c7d8e9fa0b1",'
    '"message_id":"0193a1b2-7c3d-7e4f-8a5b-6c7d8e9fa0b2","text":" tokens"}'
)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def send_frames(protocol: str, sockets: int, frames: int, pace: float, port: Any, result: Any) -> None:
    """Child process: accept `sockets` sockets, send each `frames` frames, report CPU per frame."""
    accepted: list[Any] = []
    sent = threading.Event()  # the sends are over: the main thread may stop the server
    finished = asyncio.Event()  # a handler that returns has uvicorn close its socket

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        accepted.append(send)
        if len(accepted) < sockets:
            await finished.wait()  # the last socket's handler sends for all, then closes them
            return
        start = cpu_seconds()
        loop = asyncio.get_running_loop()
        due = loop.time()
        for _ in range(frames):
            for each in accepted:
                await each({"type": "websocket.send", "text": FRAME})
            due += pace
            await asyncio.sleep(due - loop.time())
        result.put((cpu_seconds() - start) / (frames * sockets))
        for each in accepted:
            await each({"type": "websocket.close"})
        finished.set()
        sent.set()

    with loopback_server(app, **{**WEBSOCKET_OPTIONS, "ws": protocol}) as url:
        port.put(urlsplit(url).port)
        sent.wait()


async def read_all(port: int) -> int:
    async with websockets.connect(f"ws://127.0.0.1:{port}/", max_queue=None) as socket:
        return sum([1 async for _ in socket])


def measure(protocol: str, sockets: int, frames: int, pace: float) -> float:
    context = multiprocessing.get_context("spawn")
    port, result = context.Queue(), context.Queue()
    arguments = (protocol, sockets, frames, pace, port, result)
    child = context.Process(target=send_frames, args=arguments, daemon=True)
    child.start()
    try:
        address = port.get(timeout=30)

        async def clients() -> list[int]:
            return await asyncio.gather(*(read_all(address) for _ in range(sockets)))

        received = asyncio.run(clients())
        if received != [frames] * sockets:
            raise RuntimeError(f"{protocol}: the clients received {received}, not {frames} each")
        return float(result.get(timeout=30))
    finally:
        child.terminate()
        child.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=10)
    parser.add_argument("--frames", type=int, default=5000, help="frames sent to each socket")
    parser.add_argument("--pace", type=float, default=0.001, help="seconds between frames to a socket")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    costs: dict[str, list[float]] = {protocol: [] for protocol in PROTOCOLS}
    for _ in range(args.rounds):
        for protocol in PROTOCOLS:
            costs[protocol].append(measure(protocol, args.sockets, args.frames, args.pace) * 1e6)
            time.sleep(1)
    print(
        f"{args.sockets} sockets x {args.frames} frames of {len(FRAME)} characters, "
        f"one each {args.pace * 1000:g} ms, {args.rounds} rounds"
    )
    for protocol, values in costs.items():
        runs = ", ".join(f"{value:.1f}" for value in values)
        print(f"{protocol}: median {statistics.median(values):.1f} us of server CPU per frame sent ({runs})")


if __name__ == "__main__":
    main()
