"""Fitting a conversation into a token budget (tokens counted offline, see mathia.tokens)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from mathia.assistant.providers import ChatMessage, ChatRequest
from mathia.tokens import count_tokens, encoding

# Role markers and separators each message costs on top of its text.
MESSAGE_OVERHEAD = 4


def message_tokens(message: ChatMessage) -> int:
    return count_tokens(message.content) + MESSAGE_OVERHEAD


def fixed_tokens(request: ChatRequest) -> int:
    """What every call costs whatever history is kept: the system prompt and the tool specs."""
    tools = msgspec.json.encode(request.tools).decode() if request.tools else ""
    return count_tokens(request.system) + count_tokens(tools)


def request_tokens(request: ChatRequest) -> int:
    return fixed_tokens(request) + sum(message_tokens(m) for m in request.messages)


def _truncate(message: ChatMessage, budget: int) -> ChatMessage:
    """The message cut to at most `budget` tokens (its beginning kept)."""
    bpe = encoding()
    tokens = bpe.encode_ordinary(message.content)
    keep = budget - MESSAGE_OVERHEAD
    # A cut can fall inside a multi-byte character: drop its partial bytes rather than
    # decode them to U+FFFD. Re-encoding can still come out longer: shrink until it fits.
    while keep > 0:
        text = bpe.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
        if count_tokens(text) + MESSAGE_OVERHEAD <= budget:
            return ChatMessage(message.role, text)
        keep -= 1
    return ChatMessage(message.role, "")


def trim_history(messages: Sequence[ChatMessage], budget: int) -> list[ChatMessage]:
    """The newest messages whose tokens fit in `budget`, oldest dropped first, order kept.

    The newest message is always kept, cut to the budget if it alone is too long.
    """
    if not messages:
        return []
    if budget < MESSAGE_OVERHEAD:
        raise ValueError(f"budget: {budget} tokens cannot hold a message")
    kept: list[ChatMessage] = []
    remaining = budget
    for message in reversed(messages):
        cost = message_tokens(message)
        if cost > remaining:
            if not kept:
                kept.append(_truncate(message, remaining))
            break
        kept.append(message)
        remaining -= cost
    kept.reverse()
    return kept


def fit_request(request: ChatRequest, budget: int) -> ChatRequest:
    """The request with its history trimmed so that the whole prompt fits in `budget` tokens.

    The system prompt and tools are always kept; a budget they alone exceed is a configuration error.
    """
    fixed = fixed_tokens(request)
    if fixed + MESSAGE_OVERHEAD > budget:
        raise ValueError(f"budget: {budget} tokens leave no room after the system prompt and tools ({fixed})")
    messages = trim_history(request.messages, budget - fixed)
    return msgspec.structs.replace(request, messages=messages)
