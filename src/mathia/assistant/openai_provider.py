"""An OpenAI-compatible chat API (OpenRouter, Hugging Face router) over the shared httpx client.

Chunks arrive as server-sent events (`mathia.assistant.sse`); `data: [DONE]` ends the stream. Tool calls
arrive in pieces by index (id and name first, then argument fragments) and are
emitted whole when the choice finishes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
import msgspec

from mathia.assistant.providers import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    ProviderError,
    TextDelta,
    ToolCall,
    retry_after,
    retryable_status,
    tool_arguments,
)
from mathia.assistant.sse import sse_data


class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Error(msgspec.Struct):
    message: str = "unknown error"
    code: int | str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: _Usage | None = None
    error: _Error | None = None
    model: str | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


class _PendingCall:
    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, delta: _ToolCallDelta) -> None:
        self.id = delta.id or self.id
        if delta.function is not None:
            self.name = delta.function.name or self.name
            self.arguments.append(delta.function.arguments or "")

    def call(self, provider: str) -> ToolCall:
        return ToolCall(self.id, self.name, tool_arguments(provider, self.name, "".join(self.arguments)))


class OpenAICompatibleProvider:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        max_tokens: int,
        client: httpx.AsyncClient,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.max_tokens = max_tokens
        self.client = client
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)

    async def aclose(self) -> None:
        """The httpx client is shared and belongs to the app."""

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [turn for m in request.messages for turn in _messages(m)]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens or self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
                }
                for t in request.tools
            ]
        return body

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]:
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"}
        usage = _Usage()
        model = self.model
        stop_reason = "end_turn"
        pending: dict[int, _PendingCall] = {}
        try:
            async with self.client.stream(
                "POST", self.url, json=self._body(request), headers=headers, timeout=self.timeout
            ) as response:
                if response.status_code >= 400:
                    raise await self._status_error(response)
                async for data in sse_data(response.aiter_lines()):
                    if data == "[DONE]":
                        break
                    try:
                        chunk = _decode_chunk(data)
                    except msgspec.DecodeError as exc:
                        raise ProviderError(
                            self.name, f"unreadable stream chunk: {exc}", retryable=True
                        ) from exc
                    if chunk.error is not None:
                        raise _chunk_error(self.name, chunk.error)
                    model = chunk.model or model
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        delta = choice.delta or _Delta()
                        if delta.content:
                            yield TextDelta(delta.content)
                        for call in delta.tool_calls or []:
                            pending.setdefault(call.index, _PendingCall()).add(call)
                        if choice.finish_reason is not None:
                            stop_reason = _STOP_REASONS.get(choice.finish_reason, choice.finish_reason)
                            for index in sorted(pending):
                                yield pending.pop(index).call(self.name)
        except httpx.TimeoutException as exc:
            raise ProviderError(self.name, f"timed out: {type(exc).__name__}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(self.name, f"connection failed: {exc!r}", retryable=True) from exc
        yield Finish(
            provider=self.name,
            model=model,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            stop_reason=stop_reason,
        )

    async def _status_error(self, response: httpx.Response) -> ProviderError:
        await response.aread()
        try:
            message = msgspec.json.decode(response.content, type=_ErrorBody).error.message
        except msgspec.DecodeError:
            message = response.text[:200] or response.reason_phrase
        return ProviderError(
            self.name,
            f"HTTP {response.status_code}: {message}",
            retryable=retryable_status(response.status_code),
            retry_after=retry_after(response.headers),
            status=response.status_code,
        )


def _messages(message: ChatMessage) -> list[dict[str, Any]]:
    """A turn in the chat completions shape: each tool result is a `tool` message of its own."""
    if message.tool_results:
        return [
            {"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in message.tool_results
        ]
    if message.tool_calls:
        calls = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": msgspec.json.encode(c.arguments).decode()},
            }
            for c in message.tool_calls
        ]
        return [{"role": "assistant", "content": message.content or None, "tool_calls": calls}]
    return [{"role": message.role, "content": message.content}]


# OpenAI's finish reasons in the names Anthropic (and the rest of the app) uses.
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


def _chunk_error(provider: str, error: _Error) -> ProviderError:
    status = error.code if isinstance(error.code, int) else None
    return ProviderError(
        provider,
        f"stream error {error.code}: {error.message}",
        retryable=status is None or retryable_status(status),
        status=status,
    )
