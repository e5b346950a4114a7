"""Claude through the official SDK, streaming.

The SDK sends the request (authentication, headers, base URL, timeouts) and turns
HTTP errors into its exceptions; the stream's events are decoded here with msgspec,
in the documented wire format, rather than into the SDK's pydantic models: at many
concurrent answers that per-event work was the largest part of the server's CPU
(docs/performance.md). The SDK's own retries are off: the chain retries, so that it
can fall back to the next provider instead of waiting out the SDK's back-off.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2
import msgspec
from anthropic import AsyncAnthropic, Timeout, omit

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

# Error types that may arrive in a mid-stream `event: error` and are worth a retry.
RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
SPEND_LIMIT = "enforced_spend_limit_reached"


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        max_tokens: int,
        base_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.client = AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=Timeout(read_timeout, connect=connect_timeout),
        )

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]:
        # Plain dicts: the SDK's TypedDict unions do not narrow from our structs.
        messages: Any = [_message(m) for m in request.messages]
        tools: Any = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
        answer = _Answer(self.model)
        try:
            async with self.client.messages.with_streaming_response.create(
                model=self.model,
                max_tokens=request.max_tokens or self.max_tokens,
                system=request.system or omit,
                messages=messages,
                tools=tools or omit,
                stream=True,
            ) as response:
                async for data in sse_data(response.iter_lines()):
                    if (event := answer.take(_decode_event(data))) is not None:
                        yield event
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except anthropic.APIConnectionError as exc:  # APITimeoutError included
            raise ProviderError(self.name, str(exc) or type(exc).__name__, retryable=True) from exc
        except httpx2.TransportError as exc:  # the body broke after the headers (SDK 2.x: httpx2)
            raise ProviderError(self.name, f"connection failed: {exc!r}", retryable=True) from exc
        except msgspec.DecodeError as exc:
            raise ProviderError(self.name, f"unreadable stream event: {exc}", retryable=True) from exc
        yield answer.finish()


# The stream's events (https://docs.anthropic.com/en/api/messages-streaming), as far as they matter.
class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None


class _StartedMessage(msgspec.Struct):
    model: str = ""
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Block(msgspec.Struct):
    type: str
    id: str = ""
    name: str = ""


class _BlockDelta(msgspec.Struct):
    type: str
    text: str = ""
    partial_json: str = ""


class _MessageDelta(msgspec.Struct):
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _MessageStart(msgspec.Struct, tag="message_start"):
    message: _StartedMessage


class _BlockStart(msgspec.Struct, tag="content_block_start"):
    index: int
    content_block: _Block


class _BlockDeltaEvent(msgspec.Struct, tag="content_block_delta"):
    index: int
    delta: _BlockDelta


class _BlockStop(msgspec.Struct, tag="content_block_stop"):
    index: int


class _MessageDeltaEvent(msgspec.Struct, tag="message_delta"):
    delta: _MessageDelta
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _Error(msgspec.Struct, tag="error"):
    error: _ErrorBody


class _MessageStop(msgspec.Struct, tag="message_stop"):
    pass


class _Ping(msgspec.Struct, tag="ping"):
    pass


class _Typed(msgspec.Struct):
    type: str


_StreamEvent = (
    _MessageStart
    | _BlockStart
    | _BlockDeltaEvent
    | _BlockStop
    | _MessageDeltaEvent
    | _MessageStop
    | _Ping
    | _Error
)
_decode = msgspec.json.Decoder(_StreamEvent).decode
_decode_type = msgspec.json.Decoder(_Typed).decode
_KNOWN = frozenset(t.__struct_config__.tag for t in _StreamEvent.__args__)


def _decode_event(data: str) -> _StreamEvent | None:
    """The event, or None for an event type added to the API after this was written."""
    try:
        event: _StreamEvent = _decode(data)
    except msgspec.ValidationError:
        if _decode_type(data).type in _KNOWN:
            raise
        return None
    return event


class _Answer:
    """What one stream has said so far: its text, its tool calls in the making, its usage."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.input_tokens = 0
        self.output_tokens = 0
        self.stop_reason = "end_turn"
        self.tools: dict[int, tuple[_Block, list[str]]] = {}

    def take(self, event: _StreamEvent | None) -> Event | None:
        """The event for the caller that this stream event makes, if any (most make none)."""
        match event:
            case _BlockDeltaEvent(delta=_BlockDelta(type="text_delta", text=text)):
                return TextDelta(text)
            case _BlockDeltaEvent(
                index=index, delta=_BlockDelta(type="input_json_delta", partial_json=piece)
            ):
                if index in self.tools:
                    self.tools[index][1].append(piece)
            case _BlockStart(index=index, content_block=block) if block.type == "tool_use":
                self.tools[index] = (block, [])
            case _BlockStop(index=index) if index in self.tools:
                block, pieces = self.tools.pop(index)
                arguments = tool_arguments(AnthropicProvider.name, block.name, "".join(pieces))
                return ToolCall(block.id, block.name, arguments)
            case _MessageStart(message=message):
                self.model = message.model or self.model
                self.input_tokens = message.usage.input_tokens or 0
                self.output_tokens = message.usage.output_tokens or 0
            case _MessageDeltaEvent(delta=delta, usage=usage):
                self.stop_reason = delta.stop_reason or self.stop_reason
                self.input_tokens = usage.input_tokens or self.input_tokens
                self.output_tokens = usage.output_tokens or self.output_tokens
            case _Error(error=error):
                what, retryable = f"{error.type}: {error.message}", error.type in RETRYABLE_TYPES
                raise ProviderError(AnthropicProvider.name, what, retryable=retryable)
        return None

    def finish(self) -> Finish:
        return Finish(
            provider=AnthropicProvider.name,
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            stop_reason=self.stop_reason,
        )


def _message(message: ChatMessage) -> dict[str, Any]:
    """A turn in the Messages API's shape: tool calls and results are content blocks."""
    if message.tool_results:
        results = [
            {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content}
            for r in message.tool_results
        ]
        return {"role": "user", "content": results}
    if message.tool_calls:
        text = [{"type": "text", "text": message.content}] if message.content else []
        calls = [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls
        ]
        return {"role": "assistant", "content": [*text, *calls]}
    return {"role": message.role, "content": message.content}


def _status_error(exc: anthropic.APIStatusError) -> ProviderError:
    status = exc.status_code
    if status < 400:  # an `event: error` after the 200: the body's type tells what happened
        retryable = exc.type in RETRYABLE_TYPES
    else:
        retryable = retryable_status(status) and exc.error_code != SPEND_LIMIT
    message = exc.api_message or str(exc)
    return ProviderError(
        AnthropicProvider.name,
        f"{exc.type or status}: {message}",
        retryable=retryable,
        retry_after=retry_after(exc.response.headers) if status >= 400 else None,
        status=status,
    )
