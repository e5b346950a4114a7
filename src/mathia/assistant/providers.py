"""The model-provider interface: what the assistant asks a model, and what comes back.

A caller builds a `ChatRequest` (system prompt, conversation, optional tools)
and iterates a provider's `stream(request)`, an async iterator of events:

- `TextDelta(text)`: the next piece of the answer, to forward as it arrives;
- `ToolCall(id, name, arguments)`: the model asks for an action (arguments parsed); the
  caller runs it and asks again with the call and its `ToolResult` added to the
  conversation (`ChatRequest.after_tools`), so that the model answers from the result;
- `Finish(provider, model, input_tokens, output_tokens, stop_reason, latency_ms)`:
  always last on success; record it as usage.

In the app, iterate a `ProviderChain` (mathia.assistant.chain), which is itself
a provider: it tries the configured providers in order with retries and
timeouts, and ends with the offline provider, so it always answers. Close the
iterator when stopping early, so the HTTP stream is closed at once:

    async with contextlib.aclosing(chain.stream(request)) as events:
        async for event in events:
            ...

Failures: `ProviderError` means nothing was streamed (safe to retry or to show
an error); `StreamInterrupted` means text was already streamed, and carries it
in `partial_text` so the caller can keep it and end the message as incomplete.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal, Protocol

import msgspec


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool the model may call: `input_schema` is a JSON schema of its arguments."""

    name: str
    description: str
    input_schema: dict[str, Any]


class ChatRequest(msgspec.Struct, frozen=True):
    messages: list[ChatMessage]
    system: str = ""
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    # None: the provider's configured default.
    max_tokens: int | None = None
    # The asking member's own words; the history's last turn may merge several members' messages.
    question: str = ""

    def after_tools(self, text: str, calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> ChatRequest:
        """This request continued by the model's turn that called tools and by their results."""
        turns = [
            ChatMessage("assistant", text, tool_calls=tuple(calls)),
            ChatMessage("user", "", tool_results=tuple(results)),
        ]
        return msgspec.structs.replace(self, messages=[*self.messages, *turns])

    @property
    def last_user_text(self) -> str:
        asked = (m.content for m in reversed(self.messages) if m.role == "user" and not m.tool_results)
        return self.question or next(asked, "")


class TextDelta(msgspec.Struct, frozen=True, tag="text"):
    text: str


class ToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    id: str
    name: str
    arguments: dict[str, Any]


class ToolResult(msgspec.Struct, frozen=True):
    """What running a tool call gave, sent back to the model in the next user turn."""

    call_id: str
    content: str


class ChatMessage(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str
    # An assistant turn that called tools carries the calls; the user turn after it, their results.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


class Finish(msgspec.Struct, frozen=True, tag="finish"):
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    # From the start of the call that answered to its end; filled in by the chain.
    latency_ms: int = 0


Event = TextDelta | ToolCall | Finish


class Provider(Protocol):
    name: str
    model: str

    def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]: ...

    async def aclose(self) -> None: ...


class ProviderError(Exception):
    """A model call failed before any text was streamed."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class StreamInterrupted(Exception):
    """A model call failed after text was streamed; `partial_text` is what arrived."""

    def __init__(self, partial_text: str, cause: ProviderError) -> None:
        super().__init__(f"the answer was interrupted: {cause}")
        self.partial_text = partial_text
        self.cause = cause


class NoProviderAnswered(Exception):
    """Every provider of a chain failed (a chain without the offline provider)."""

    def __init__(self, failures: list[ProviderError]) -> None:
        super().__init__("; ".join(str(failure) for failure in failures) or "no provider configured")
        self.failures = failures


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked to wait: `retry-after-ms`, or `retry-after` in seconds or as an HTTP date."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def retryable_status(status: int) -> bool:
    """Worth another try: timeouts, conflicts, rate limits and server-side failures (529 included)."""
    return status in (408, 409, 429) or status >= 500


def tool_arguments(provider: str, tool: str, raw: str) -> dict[str, Any]:
    """A tool call's arguments from the JSON pieces a model streamed (none: no arguments)."""
    try:
        arguments = msgspec.json.decode(raw or "{}")
    except msgspec.DecodeError as exc:
        raise ProviderError(provider, f"tool call {tool!r}: arguments are not JSON", retryable=False) from exc
    if not isinstance(arguments, dict):
        raise ProviderError(provider, f"tool call {tool!r}: arguments are not an object", retryable=False)
    return arguments
