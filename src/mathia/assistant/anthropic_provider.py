"""Claude through the official SDK's streaming helper.

The SDK's own retries are off: the chain retries, so that it can fall back to
the next provider instead of waiting out the SDK's back-off.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
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
)

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
        try:
            async with self.client.messages.stream(
                model=self.model,
                max_tokens=request.max_tokens or self.max_tokens,
                system=request.system or omit,
                messages=messages,
                tools=tools or omit,
            ) as stream:
                async for event in stream:
                    if event.type == "text":
                        yield TextDelta(event.text)
                    elif event.type == "content_block_stop" and event.content_block.type == "tool_use":
                        block = event.content_block
                        yield ToolCall(block.id, block.name, dict(block.input))
                message = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            raise _status_error(exc) from exc
        except anthropic.APIConnectionError as exc:  # APITimeoutError included
            raise ProviderError(self.name, str(exc) or type(exc).__name__, retryable=True) from exc
        yield Finish(
            provider=self.name,
            model=message.model,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            stop_reason=message.stop_reason or "end_turn",
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
