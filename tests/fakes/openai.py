"""A fake OpenAI-compatible chat API (`POST /v1/chat/completions`), as OpenRouter and
the Hugging Face router serve it, scripted by tests like `tests.fakes.anthropic`.

Streams follow the wire format: `data: {chunk}` lines each followed by a blank
line, `: OPENROUTER PROCESSING` comment lines, tool calls as `tool_calls` deltas
(id and name first, then argument pieces), a final usage chunk with empty
`choices` when the request asked `stream_options.include_usage`, then
`data: [DONE]`. Errors are `{"error":{"code","message"}}` with `Retry-After` on
429/503; a mid-stream failure is a `data:` chunk carrying an `error` field.
Give clients the base URL `{served}/v1`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Stream

from tests.fakes.llm import Exchange, Reply, ScriptedFake, ToolUse, prompt_words

__all__ = ["Failure", "FakeOpenAI", "Reply", "ToolUse"]

COMMENT = b": OPENROUTER PROCESSING\n\n"


@dataclass(frozen=True)
class Failure:
    status: int
    message: str
    retry_after: float | None = None

    @classmethod
    def rate_limited(cls, retry_after: float = 1.0) -> Failure:
        return cls(429, "Rate limit exceeded", retry_after)

    @classmethod
    def unavailable(cls) -> Failure:
        return cls(503, "No provider available")


class FakeOpenAI(ScriptedFake[Failure]):
    path = "/v1/chat/completions"

    def __init__(self, *, default: Reply | None = None, api_key: str = "sk-or-fake") -> None:
        super().__init__(default=default, api_key=api_key)

    async def handle(self, request: Request[Any, Any, Any]) -> Response[Any]:
        exchange, body = await self.record(request)
        problem = self._check(request, body)
        scenario = problem or self.next_scenario()
        if isinstance(scenario, Failure):
            exchange.status = scenario.status
            headers = {} if scenario.retry_after is None else {"retry-after": f"{scenario.retry_after:g}"}
            error = {"error": {"code": scenario.status, "message": scenario.message}}
            return Response(
                msgspec.json.encode(error),
                status_code=scenario.status,
                media_type="application/json",
                headers=headers,
            )
        if not exchange.body.get("stream"):
            return Response(
                msgspec.json.encode(_completion(exchange.body, scenario)), media_type="application/json"
            )
        return Stream(_stream(exchange, scenario), media_type="text/event-stream")

    def _check(self, request: Request[Any, Any, Any], body: Any) -> Failure | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Failure(401, "No auth credentials found")
        if not isinstance(body, dict) or not body.get("model"):
            return Failure(400, "model: a model is required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Failure(400, "messages: at least one message is required")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in (
                "system",
                "user",
                "assistant",
                "tool",
            ):
                return Failure(400, f"messages.{i}.role: invalid role")
        for i, message in enumerate(messages):
            called = [c["id"] for c in message.get("tool_calls") or []]
            answered = set()
            for reply in messages[i + 1 :]:
                if reply.get("role") != "tool":
                    break
                answered.add(reply.get("tool_call_id"))
            if missing := [c for c in called if c not in answered]:
                return Failure(
                    400,
                    "An assistant message with 'tool_calls' must be followed by tool messages responding "
                    "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                    + ", ".join(missing),
                )
        return None


def _finish_reason(reply: Reply) -> str:
    return reply.stop_reason or ("tool_calls" if reply.tool_calls else "stop")


def _usage(body: Mapping[str, Any], reply: Reply) -> dict[str, int]:
    prompt, completion = prompt_words(dict(body)), len(reply.chunks) + len(reply.tool_calls)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _call(tool: ToolUse, arguments: str) -> dict[str, Any]:
    return {"id": tool.id, "type": "function", "function": {"name": tool.name, "arguments": arguments}}


def _completion(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [_call(tool, "".join(tool.json_pieces())) for tool in reply.tool_calls]
    return {
        "id": f"gen-{secrets.token_hex(8)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(body, reply),
    }


async def _stream(exchange: Exchange, reply: Reply) -> AsyncIterator[bytes]:
    body = exchange.body
    base = {
        "id": f"gen-{secrets.token_hex(8)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
    }
    base["model"] = body["model"]

    def chunk(delta: Mapping[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return b"data: " + msgspec.json.encode({**base, "choices": [choice], **extra}) + b"\n\n"

    try:
        exchange.sent_frame()
        yield COMMENT
        if reply.stall:
            await asyncio.sleep(reply.stall)
        yield chunk({"role": "assistant", "content": ""})
        for sent, text in enumerate(reply.chunks):
            if reply.error_after is not None and sent == reply.error_after:
                exchange.finished = True
                yield chunk(
                    {"content": ""}, "error", error={"code": 502, "message": "Upstream provider failed"}
                )
                return
            if sent == reply.cut_after:
                raise ConnectionAbortedError("the fake drops the connection mid-body")
            if reply.pace:
                await asyncio.sleep(reply.pace)
            exchange.sent_token()
            yield chunk({"content": text})
            if sent == 0:
                yield COMMENT  # OpenRouter keeps sending these while it works
        for index, tool in enumerate(reply.tool_calls):
            yield chunk({"tool_calls": [{"index": index, **_call(tool, "")}]})
            for piece in tool.json_pieces():
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, _finish_reason(reply))
        if (body.get("stream_options") or {}).get("include_usage"):
            yield (
                b"data: "
                + msgspec.json.encode({**base, "choices": [], "usage": _usage(body, reply)})
                + b"\n\n"
            )
        yield b"data: [DONE]\n\n"
        exchange.finished = True
    finally:
        exchange.disconnected = not exchange.finished
