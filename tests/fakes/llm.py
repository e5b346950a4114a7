"""What the fake model APIs share: the scripted answers, the request log, the script queue.

`tests.fakes.anthropic` and `tests.fakes.openai` turn a `Reply` into their own
wire format; a `Reply` means the same thing to both.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec
from litestar import Litestar, Request, Response, get, post

from mathia.connectors.testing import serve


@dataclass(frozen=True)
class ToolUse:
    """A tool call; its arguments are streamed as JSON pieces of `json_chunk` characters."""

    name: str
    input: dict[str, Any]
    id: str = field(default_factory=lambda: f"toolu_{secrets.token_hex(12)}")
    json_chunk: int = 7

    def json_pieces(self) -> list[str]:
        encoded = msgspec.json.encode(self.input).decode()
        return [encoded[i : i + self.json_chunk] for i in range(0, len(encoded), self.json_chunk)]


@dataclass(frozen=True)
class Reply:
    """A 200 streamed answer: one text delta per chunk (one output token each), then the tool calls.

    `pace` is the pause before each text delta; `stall` a pause after the stream
    opened, before any content; `error_after` sends the API's mid-stream error
    after that many text deltas and ends the stream; `cut_after` drops the connection
    there instead, in the middle of the body, as a failing network or proxy does.
    """

    chunks: Sequence[str] = ("Hello", " from", " the", " fake", " model", ".")
    pace: float = 0.0
    stall: float = 0.0
    tool_calls: Sequence[ToolUse] = ()
    stop_reason: str | None = None
    error_after: int | None = None
    cut_after: int | None = None

    @classmethod
    def long(cls, words: int = 400, pace: float = 0.0) -> Reply:
        return cls(chunks=[f" word{i}" for i in range(words)], pace=pace)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class Exchange:
    """One request the fake received, and what it sent back."""

    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    status: int = 200
    first_byte_at: float | None = None  # when the stream's first frame was handed to the server
    token_times: list[float] = field(default_factory=list)
    finished: bool = False
    disconnected: bool = False

    @property
    def first_token_at(self) -> float | None:
        return self.token_times[0] if self.token_times else None

    def sent_frame(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()

    def sent_token(self) -> None:
        self.token_times.append(time.perf_counter())


def prompt_words(body: dict[str, Any]) -> int:
    """A deterministic stand-in for an input token count: whitespace-separated words of every text."""

    def texts(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from texts(item)
        elif isinstance(value, dict):
            for key in ("text", "content"):
                yield from texts(value.get(key))

    return sum(len(text.split()) for text in texts([body.get("system"), *body.get("messages", [])]))


FailureT = TypeVar("FailureT")


class ScriptedFake(Generic[FailureT]):
    """A queue of scripted answers and the log of requests, shared by the server and test threads."""

    def __init__(self, *, default: Reply | None, api_key: str) -> None:
        self.api_key = api_key
        self.default = default or Reply()
        self.exchanges: list[Exchange] = []
        self._scenarios: deque[Reply | FailureT] = deque()
        self._lock = threading.Lock()

    def script(self, *scenarios: Reply | FailureT) -> None:
        """Queue answers for the next requests, in order; an empty queue answers `default`."""
        with self._lock:
            self._scenarios.extend(scenarios)

    def reset(self) -> None:
        with self._lock:
            self._scenarios.clear()
            self.exchanges.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [exchange.body for exchange in self.exchanges]

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve the fake on 127.0.0.1; yields its base URL."""
        with serve(self.app()) as base_url:
            yield base_url

    # The path of the API's one endpoint, served by `handle`.
    path = ""

    async def handle(self, request: Request[Any, Any, Any]) -> Response[Any]:
        raise NotImplementedError

    def app(self) -> Litestar:
        @post(self.path, status_code=200)
        async def endpoint(request: Request[Any, Any, Any]) -> Response[Any]:
            return await self.handle(request)

        @get("/_fake/exchanges", sync_to_thread=False)
        def exchanges() -> list[dict[str, Any]]:
            """The log, for a benchmark that runs the fake in another process."""
            return [dataclasses.asdict(exchange) for exchange in list(self.exchanges)]

        return Litestar([endpoint, exchanges], debug=False)

    async def record(self, request: Request[Any, Any, Any]) -> tuple[Exchange, Any]:
        """Log the request; returns the exchange and the decoded body (None if it is not JSON)."""
        raw = await request.body()
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = None
        exchange = Exchange(
            body=body if isinstance(body, dict) else {},
            headers=dict(request.headers),
            received_at=time.perf_counter(),
        )
        with self._lock:
            self.exchanges.append(exchange)
        return exchange, body

    def next_scenario(self) -> Reply | FailureT:
        with self._lock:
            return self._scenarios.popleft() if self._scenarios else self.default
