"""Token counting and history trimming: examples, and properties that hold for any conversation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mathia.assistant.context import (
    MESSAGE_OVERHEAD,
    fit_request,
    message_tokens,
    request_tokens,
    trim_history,
)
from mathia.assistant.providers import ChatMessage, ChatRequest, ToolSpec
from mathia.tokens import count_tokens

texts = st.text(st.characters(codec="utf-8"), max_size=300)
messages = st.lists(
    st.builds(ChatMessage, st.sampled_from(["user", "assistant"]), texts), min_size=1, max_size=25
)


def test_counts_are_real_bpe_tokens() -> None:
    # cl100k_base: "hello world" is two tokens; repeated text scales with it.
    assert count_tokens("hello world") == 2
    assert count_tokens("") == 0
    assert count_tokens("hello world " * 100) > 150
    assert count_tokens("Habari ya asubuhi? 🌍") > count_tokens("Habari")


def test_oldest_messages_are_dropped_first() -> None:
    history = [ChatMessage("user", f"message number {i} " + "word " * 20) for i in range(10)]
    cost = message_tokens(history[0])

    kept = trim_history(history, budget=cost * 3 + 1)

    assert kept == history[-3:]


def test_a_newest_message_longer_than_the_budget_is_cut_not_dropped() -> None:
    long = ChatMessage("user", "Tell me everything about " + "Nairobi " * 500)

    [kept] = trim_history([ChatMessage("user", "before"), long], budget=50)

    assert long.content.startswith(kept.content)
    assert kept.content.startswith("Tell me everything about")
    assert message_tokens(kept) <= 50


def test_a_system_prompt_over_the_budget_is_refused() -> None:
    request = ChatRequest(system="rule " * 100, messages=[ChatMessage("user", "hi")])

    with pytest.raises(ValueError, match="budget: 50 tokens leave no room"):
        fit_request(request, 50)


@settings(max_examples=200, deadline=None)
@given(
    history=messages,
    system=texts,
    with_tool=st.booleans(),
    headroom=st.integers(min_value=MESSAGE_OVERHEAD, max_value=2000),
)
def test_fit_request_properties(
    history: list[ChatMessage], system: str, with_tool: bool, headroom: int
) -> None:
    tools = [ToolSpec("get_weather", "Weather in a city", {"type": "object"})] if with_tool else []
    request = ChatRequest(messages=history, system=system, tools=tools)
    budget = request_tokens(ChatRequest(messages=[], system=system, tools=tools)) + headroom

    fitted = fit_request(request, budget)
    kept = fitted.messages

    # Never over budget, and the system part and tools are untouched.
    assert request_tokens(fitted) <= budget
    assert (fitted.system, fitted.tools) == (system, tools)
    # The newest message is always there (cut only when it alone is too long).
    newest = history[-1]
    assert kept[-1].role == newest.role
    assert newest.content.startswith(kept[-1].content)
    if request_tokens(ChatRequest(messages=[newest], system=system, tools=tools)) <= budget:
        assert kept[-1] == newest
        # Order kept: what remains is the newest stretch of the conversation, unchanged...
        assert kept == history[len(history) - len(kept) :]
        # ...and the next older message was dropped only because it did not fit.
        if len(kept) < len(history):
            older = history[len(history) - len(kept) - 1]
            assert request_tokens(fitted) + message_tokens(older) > budget
    else:
        assert len(kept) == 1
