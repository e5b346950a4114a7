"""A fake Anthropic Messages API (`POST /v1/messages`), scripted by tests.

It follows the public wire format: `event:`+`data:` SSE frames (message_start,
content_block_start/delta/stop, message_delta, message_stop, ping), error bodies
`{"type":"error","error":{type,message},"request_id"}`, a `request-id` header on
every response, `retry-after` on 429, 529 overloaded, a mid-stream `event: error`
after the 200, and tool_use blocks streamed as `input_json_delta` pieces.

Tests queue scenarios (`Reply`, `Failure`); each request takes the next one, or
the default reply when the queue is empty. Every request is recorded as an
`Exchange` (body, headers, when it arrived, when the first frame and each text
delta left, whether the client hung up), so tests can assert on the prompt and
benchmarks on the pace; `GET /_fake/exchanges` serves the log as JSON. Times
are `time.perf_counter()` values (CLOCK_MONOTONIC on Linux, so comparable with
another process's `perf_counter()` on the same machine).

The key is accepted as `x-api-key` (as the API reference shows) or as a Bearer
token (as SDK 2.x sends it); some `anthropic-version` header is required.

A benchmark wants a fixed pace: `FakeAnthropic(default=Reply.long(words=200, pace=0.01))`.

    fake = FakeAnthropic()
    fake.script(Failure.rate_limited(retry_after=1), Reply(chunks=["Hi", "!"]))
    with fake.running() as base_url:
        client = AsyncAnthropic(api_key=fake.api_key, base_url=base_url)
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from tests.fakes.llm import Exchange, Reply, ScriptedFake, ToolUse, prompt_words

__all__ = ["Failure", "FakeAnthropic", "Reply", "ToolUse"]

ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer with the API's error body."""

    error_type: str
    message: str
    retry_after: float | None = None
    error_code: str | None = None  # error.details.error_code

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.error_type]

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> Failure:
        return cls("rate_limit_error", "Number of request tokens has exceeded your rate limit.", retry_after)

    @classmethod
    def overloaded(cls) -> Failure:
        return cls("overloaded_error", "Overloaded")

    @classmethod
    def spend_limit(cls) -> Failure:
        return cls(
            "rate_limit_error",
            "You have reached your specified workspace API usage limits.",
            retry_after=1.0,
            error_code="enforced_spend_limit_reached",
        )


class FakeAnthropic(ScriptedFake["Failure"]):
    path = "/v1/messages"

    def __init__(self, *, default: Reply | None = None, api_key: str = "sk-ant-fake") -> None:
        super().__init__(default=default, api_key=api_key)

    async def handle(self, request: Request[Any, Any, Any]) -> Response[Any]:
        exchange, body = await self.record(request)
        problem = self._check(request, body)
        if problem is not None:
            exchange.status = problem.status
            return _error_response(problem)
        scenario = self.next_scenario()
        if isinstance(scenario, Failure):
            exchange.status = scenario.status
            return _error_response(scenario)
        if not exchange.body.get("stream"):
            return _json(_whole_message(exchange.body, scenario))
        return Stream(
            _stream(exchange, scenario),
            media_type="text/event-stream",
            headers={"request-id": _request_id(), "cache-control": "no-cache", **_rate_headers()},
        )

    def _check(self, request: Request[Any, Any, Any], body: Any) -> Failure | None:
        # The reference names `x-api-key`; SDK 2.x sends the key as a Bearer token. Accept both.
        keys = {
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        }
        if self.api_key not in keys:
            return Failure("authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return Failure("invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return Failure("invalid_request_error", "the body is not a JSON object")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return Failure("invalid_request_error", f"{name}: Field required")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return Failure("invalid_request_error", "messages: at least one message is required")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return Failure(
                    "invalid_request_error", f"messages.{i}.role: Input should be 'user' or 'assistant'"
                )
        for i, tool in enumerate(body.get("tools", [])):
            if not {"name", "input_schema"} <= set(tool):
                return Failure("invalid_request_error", f"tools.{i}: name and input_schema are required")
        problem = _tool_pairing(messages)
        if problem is None and not body.get("tools") and any(_blocks(m, "tool_use") for m in messages):
            problem = "Requests which include `tool_use` or `tool_result` blocks must define tools."
        return None if problem is None else Failure("invalid_request_error", problem)


def _blocks(message: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    content = message.get("content")
    return [b for b in content if b.get("type") == kind] if isinstance(content, list) else []


def _tool_pairing(messages: list[dict[str, Any]]) -> str | None:
    """The API's rule: every `tool_use` is answered by a `tool_result` in the very next user turn,
    and every `tool_result` answers a `tool_use` of the turn before."""
    for i, message in enumerate(messages):
        called = {b["id"] for b in _blocks(messages[i - 1], "tool_use")} if i else set()
        answered = {b.get("tool_use_id") for b in _blocks(message, "tool_result")}
        if missing := sorted(called - answered):
            return (
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}"
            )
        if answered - called:
            return f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks"
    return None


def _stop_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.tool_calls else "end_turn")


def _whole_message(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.chunks:
        content.append({"type": "text", "text": "".join(reply.chunks)})
    content.extend(
        {"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in reply.tool_calls
    )
    return {
        "id": f"msg_{secrets.token_hex(12)}",
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": body["model"],
        "stop_reason": _stop_reason(reply),
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_words(body), "output_tokens": len(reply.chunks)},
    }


def _frame(data: Mapping[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


async def _stream(exchange: Exchange, reply: Reply) -> AsyncIterator[bytes]:
    body = exchange.body
    start = _whole_message(body, reply) | {"content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": start["usage"]["input_tokens"], "output_tokens": 1}
    try:
        exchange.sent_frame()
        yield _frame({"type": "message_start", "message": start})
        yield _frame({"type": "ping"})
        if reply.stall:
            await asyncio.sleep(reply.stall)
        index = 0
        if reply.chunks:
            yield _frame(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for sent, chunk in enumerate(reply.chunks):
                if reply.error_after is not None and sent == reply.error_after:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    exchange.finished = True
                    yield _frame({"type": "error", "error": error})
                    return
                if sent == reply.cut_after:
                    raise ConnectionAbortedError("the fake drops the connection mid-body")
                if reply.pace:
                    await asyncio.sleep(reply.pace)
                exchange.sent_token()
                yield _frame(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": chunk},
                    }
                )
            yield _frame({"type": "content_block_stop", "index": 0})
            index = 1
        for tool in reply.tool_calls:
            block = {"type": "tool_use", "id": tool.id, "name": tool.name, "input": {}}
            yield _frame({"type": "content_block_start", "index": index, "content_block": block})
            for piece in tool.json_pieces():
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield _frame({"type": "content_block_delta", "index": index, "delta": delta})
            yield _frame({"type": "content_block_stop", "index": index})
            index += 1
        yield _frame(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": len(reply.chunks) + len(reply.tool_calls)},
            }
        )
        yield _frame({"type": "message_stop"})
        exchange.finished = True
    finally:
        # Closed before its end: the client hung up (the server cancels the stream then).
        exchange.disconnected = not exchange.finished


def _request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


def _rate_headers() -> dict[str, str]:
    return {
        f"anthropic-ratelimit-{kind}-{part}": value
        for kind in ("requests", "tokens")
        for part, value in (("limit", "1000"), ("remaining", "999"), ("reset", "2030-01-01T00:00:00Z"))
    }


def _json(
    content: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response[Any]:
    return Response(
        msgspec.json.encode(content),
        status_code=status,
        media_type="application/json",
        headers={"request-id": _request_id(), **_rate_headers(), **(headers or {})},
    )


def _error_response(failure: Failure) -> Response[Any]:
    error: dict[str, Any] = {"type": failure.error_type, "message": failure.message}
    if failure.error_code:
        error["details"] = {"error_code": failure.error_code}
    request_id = _request_id()
    headers = {"request-id": request_id}
    if failure.retry_after is not None:
        headers["retry-after"] = f"{failure.retry_after:g}"
    return _json({"type": "error", "error": error, "request_id": request_id}, failure.status, headers)
