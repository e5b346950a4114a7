"""The real Anthropic SDK and the httpx provider against the fake APIs, over loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, NamedTuple

import httpx
import msgspec
import pytest

from mathia.assistant.anthropic_provider import AnthropicProvider
from mathia.assistant.chain import ProviderChain
from mathia.assistant.offline import NO_MODEL, OfflineProvider
from mathia.assistant.openai_provider import OpenAICompatibleProvider
from mathia.assistant.providers import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    NoProviderAnswered,
    Provider,
    StreamInterrupted,
    TextDelta,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from tests.fakes import anthropic as fa
from tests.fakes import openai as fo
from tests.fakes.llm import Reply, ScriptedFake, ToolUse

REQUEST = ChatRequest(
    system="You are Mathia, a helpful assistant.",
    messages=[
        ChatMessage("user", "Hello there"),
        ChatMessage("assistant", "Hi! How can I help?"),
        ChatMessage("user", "What is the capital of Kenya?"),
    ],
)
# The fakes count input tokens as whitespace-separated words of the prompt.
PROMPT_WORDS = sum(len(text.split()) for text in [REQUEST.system, *(m.content for m in REQUEST.messages)])
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def claude(fake_anthropic: fa.FakeAnthropic, anthropic_url: str) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(
        api_key=fake_anthropic.api_key, base_url=anthropic_url, model="claude-test", max_tokens=256
    )
    yield provider
    await provider.aclose()


@pytest.fixture
def compatible(
    fake_openai: fo.FakeOpenAI, openai_url: str, http_client: httpx.AsyncClient
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        base_url=openai_url,
        api_key=fake_openai.api_key,
        model="router/model",
        max_tokens=256,
        client=http_client,
    )


class Served(NamedTuple):
    provider: Provider
    fake: ScriptedFake[Any]
    rate_limited: Callable[[float], object]  # a 429 with retry-after, in the provider's format


@pytest.fixture(params=["anthropic", "openai"])
def either(
    request: pytest.FixtureRequest,
    claude: AnthropicProvider,
    compatible: OpenAICompatibleProvider,
    fake_anthropic: fa.FakeAnthropic,
    fake_openai: fo.FakeOpenAI,
) -> Served:
    """Each provider with its fake, for what every provider must handle alike."""
    if request.param == "anthropic":
        return Served(claude, fake_anthropic, fa.Failure.rate_limited)
    return Served(compatible, fake_openai, fo.Failure.rate_limited)


def chain(*providers: Provider, **options: float) -> ProviderChain:
    settings: dict[str, float] = {
        "backoff_base": 0.01,
        "first_token_timeout": 5,
        "total_timeout": 10,
    } | options
    return ProviderChain(providers, attempts=int(settings.pop("attempts", 3)), **settings)


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


def text_of(events: list[Event]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def finish_of(events: list[Event]) -> Finish:
    assert isinstance(events[-1], Finish)
    return events[-1]


async def wait_for(condition: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- Anthropic -------------------------------------------------------------------------------------


async def test_anthropic_streams_text_and_reports_usage(
    claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic
) -> None:
    reply = Reply(chunks=["Nairobi", " is", " the", " capital", "."])
    fake_anthropic.script(reply)

    events = await collect(claude.stream(REQUEST))

    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(chunk) for chunk in reply.chunks]
    finish = finish_of(events)
    assert (finish.provider, finish.model, finish.stop_reason) == ("anthropic", "claude-test", "end_turn")
    assert (finish.input_tokens, finish.output_tokens) == (PROMPT_WORDS, len(reply.chunks))
    body = fake_anthropic.requests[0]
    # The system prompt is top level: the Messages API has no system role.
    assert body["system"] == REQUEST.system
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "What is the capital of Kenya?"
    assert (body["model"], body["max_tokens"], body["stream"]) == ("claude-test", 256, True)
    assert "tools" not in body


async def test_overloaded_falls_back_to_the_compatible_provider(
    claude: AnthropicProvider,
    compatible: OpenAICompatibleProvider,
    fake_anthropic: fa.FakeAnthropic,
    fake_openai: fo.FakeOpenAI,
) -> None:
    fake_anthropic.script(fa.Failure.overloaded(), fa.Failure.overloaded())
    fake_openai.script(Reply(chunks=["From", " the", " fallback"]))

    events = await collect(chain(claude, compatible, attempts=2).stream(REQUEST))

    assert [e.status for e in fake_anthropic.exchanges] == [529, 529]
    assert text_of(events) == "From the fallback"
    assert finish_of(events).provider == "openai"
    assert len(fake_openai.exchanges) == 1


async def test_spend_limit_is_not_retried(
    claude: AnthropicProvider,
    compatible: OpenAICompatibleProvider,
    fake_anthropic: fa.FakeAnthropic,
    fake_openai: fo.FakeOpenAI,
) -> None:
    fake_anthropic.script(fa.Failure.spend_limit())
    fake_openai.script(Reply(chunks=["fallback"]))

    events = await collect(chain(claude, compatible).stream(REQUEST))

    assert len(fake_anthropic.exchanges) == 1
    assert text_of(events) == "fallback"


async def test_bad_request_is_not_retried_on_the_same_provider(
    claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic
) -> None:
    fake_anthropic.script(fa.Failure("invalid_request_error", "messages: too long"))

    with pytest.raises(NoProviderAnswered) as caught:
        await collect(chain(claude).stream(REQUEST))

    assert len(fake_anthropic.exchanges) == 1
    [failure] = caught.value.failures
    assert (failure.status, failure.retryable) == (400, False)
    assert "messages: too long" in str(failure)


async def test_error_event_mid_stream_keeps_the_partial_text(
    claude: AnthropicProvider,
    compatible: OpenAICompatibleProvider,
    fake_anthropic: fa.FakeAnthropic,
    fake_openai: fo.FakeOpenAI,
) -> None:
    fake_anthropic.script(Reply(chunks=["One", " two", " three", " four"], error_after=3))
    seen: list[str] = []

    async def consume() -> None:
        async for event in chain(claude, compatible).stream(REQUEST):
            if isinstance(event, TextDelta):
                seen.append(event.text)

    with pytest.raises(StreamInterrupted) as caught:
        await consume()

    assert caught.value.partial_text == "One two three" == "".join(seen)
    assert "overloaded_error" in str(caught.value.cause)
    # Text was shown: neither a retry nor a fallback would be the same answer.
    assert len(fake_anthropic.exchanges) == 1
    assert fake_openai.exchanges == []


async def test_anthropic_tool_call(claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic) -> None:
    call = ToolUse("get_weather", {"city": "Mombasa", "days": [1, 2], "note": 'a "quoted" word'})
    fake_anthropic.script(Reply(chunks=["Let me check."], tool_calls=[call]))

    request = ChatRequest(messages=[ChatMessage("user", "Weather in Mombasa?")], tools=[WEATHER])
    events = await collect(chain(claude).stream(request))

    assert text_of(events) == "Let me check."
    assert [e for e in events if isinstance(e, ToolCall)] == [ToolCall(call.id, "get_weather", call.input)]
    assert finish_of(events).stop_reason == "tool_use"
    body = fake_anthropic.requests[0]
    assert body["tools"] == [
        {"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.input_schema}
    ]
    assert "system" not in body

    # The result goes back as a tool_result block answering the tool_use, and the model answers.
    fake_anthropic.script(Reply(chunks=["Sunny, 31 °C."]))
    result = ToolResult(call.id, "Mombasa: sunny, 31 °C")
    events = await collect(
        chain(claude).stream(request.after_tools("Let me check.", [call_of(call)], [result]))
    )
    assert text_of(events) == "Sunny, 31 °C." and fake_anthropic.exchanges[1].status == 200
    assert fake_anthropic.requests[1]["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": call.id, "name": "get_weather", "input": call.input},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result.content}],
        },
    ]


def call_of(tool: ToolUse) -> ToolCall:
    return ToolCall(tool.id, tool.name, tool.input)


async def test_the_fake_refuses_a_tool_use_left_unanswered(
    claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic
) -> None:
    """As the API does: so that the tests above prove the pairing, not just the fake's patience."""
    call = ToolUse("get_weather", {"city": "Lamu"})
    request = ChatRequest(messages=[ChatMessage("user", "Weather in Lamu?")], tools=[WEATHER])
    unanswered = request.after_tools("", [call_of(call)], [ToolResult("toolu_other", "?")])
    with pytest.raises(NoProviderAnswered) as caught:
        await collect(chain(claude).stream(unanswered))
    assert "without `tool_result` blocks" in str(caught.value.failures[0])


def test_event_types_added_to_the_api_later_are_skipped_and_broken_known_ones_are_not() -> None:
    """The API may add event types; a known type that does not parse is an error, not a skip."""
    from mathia.assistant.anthropic_provider import _decode_event

    assert _decode_event('{"type": "content_block_reasoning", "index": 0}') is None
    with pytest.raises(msgspec.ValidationError):
        _decode_event('{"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}')


async def test_a_closed_port_is_a_retryable_connection_failure(unused_url: str) -> None:
    provider = AnthropicProvider(
        api_key="k", base_url=unused_url, model="m", max_tokens=10, connect_timeout=1
    )
    try:
        with pytest.raises(NoProviderAnswered) as caught:
            await collect(chain(provider, attempts=2).stream(REQUEST))
    finally:
        await provider.aclose()
    assert [f.retryable for f in caught.value.failures] == [True, True]


@pytest.fixture
def unused_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- OpenAI-compatible -----------------------------------------------------------------------------


async def test_compatible_stream_with_comments_done_and_usage(
    compatible: OpenAICompatibleProvider, fake_openai: fo.FakeOpenAI
) -> None:
    reply = Reply(chunks=["Nairobi", ",", " of", " course", "."])
    fake_openai.script(reply)

    events = await collect(compatible.stream(REQUEST))

    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(chunk) for chunk in reply.chunks]
    finish = finish_of(events)
    assert (finish.provider, finish.model, finish.stop_reason) == ("openai", "router/model", "end_turn")
    assert (finish.input_tokens, finish.output_tokens) == (PROMPT_WORDS, len(reply.chunks))
    body = fake_openai.requests[0]
    assert body["messages"][0] == {"role": "system", "content": REQUEST.system}
    assert [m["role"] for m in body["messages"][1:]] == ["user", "assistant", "user"]
    assert body["stream_options"] == {"include_usage": True}
    assert fake_openai.exchanges[0].headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert fake_openai.exchanges[0].finished


async def test_compatible_tool_calls(
    compatible: OpenAICompatibleProvider, fake_openai: fo.FakeOpenAI
) -> None:
    calls = [
        ToolUse("get_weather", {"city": "Kisumu"}, id="call_1"),
        ToolUse("get_weather", {"city": "Nakuru"}),
    ]
    fake_openai.script(Reply(chunks=[], tool_calls=calls))

    request = ChatRequest(messages=[ChatMessage("user", "Weather in Kisumu and Nakuru?")], tools=[WEATHER])
    events = await collect(compatible.stream(request))

    assert [e for e in events if isinstance(e, ToolCall)] == [call_of(c) for c in calls]
    assert finish_of(events).stop_reason == "tool_use"
    assert fake_openai.requests[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": WEATHER.input_schema,
            },
        }
    ]

    # Each result goes back as a `tool` message after the assistant's `tool_calls`.
    fake_openai.script(Reply(chunks=["Both are dry."]))
    results = [ToolResult(c.id, f"{c.input['city']}: dry") for c in calls]
    events = await collect(compatible.stream(request.after_tools("", [call_of(c) for c in calls], results)))
    assert text_of(events) == "Both are dry." and fake_openai.exchanges[1].status == 200
    sent = fake_openai.requests[1]["messages"][1:]
    assert sent[0]["role"] == "assistant" and sent[0]["content"] is None
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in sent[0]["tool_calls"]] == [
        (c.id, c.input) for c in calls
    ]
    assert sent[1:] == [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in results]


async def test_compatible_error_mid_stream_keeps_the_partial_text(
    compatible: OpenAICompatibleProvider, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script(Reply(chunks=["Half", " an", " answer", " and more"], error_after=3))

    with pytest.raises(StreamInterrupted) as caught:
        await collect(chain(compatible).stream(REQUEST))

    assert caught.value.partial_text == "Half an answer"
    assert "Upstream provider failed" in str(caught.value.cause)


async def test_compatible_503_is_retried(
    compatible: OpenAICompatibleProvider, fake_openai: fo.FakeOpenAI
) -> None:
    fake_openai.script(fo.Failure.unavailable(), Reply(chunks=["back"]))

    events = await collect(chain(compatible).stream(REQUEST))

    assert text_of(events) == "back"
    assert [e.status for e in fake_openai.exchanges] == [503, 200]


async def test_compatible_rejected_key_is_not_retried(
    fake_openai: fo.FakeOpenAI, openai_url: str, http_client: httpx.AsyncClient
) -> None:
    provider = OpenAICompatibleProvider(
        base_url=openai_url, api_key="wrong", model="m", max_tokens=10, client=http_client
    )

    with pytest.raises(NoProviderAnswered) as caught:
        await collect(chain(provider).stream(REQUEST))

    assert len(fake_openai.exchanges) == 1
    assert caught.value.failures[0].status == 401
    assert "No auth credentials found" in str(caught.value.failures[0])


# --- every provider alike -------------------------------------------------------------------------


async def test_a_long_answer_arrives_whole_and_in_order(either: Served) -> None:
    reply = Reply.long(words=600)
    either.fake.script(reply)

    events = await collect(either.provider.stream(REQUEST))

    assert text_of(events) == reply.text
    assert finish_of(events).output_tokens == 600


async def test_rate_limit_waits_as_long_as_retry_after_says(either: Served) -> None:
    either.fake.script(either.rate_limited(1), Reply(chunks=["ok"]))

    started = time.monotonic()
    events = await collect(chain(either.provider).stream(REQUEST))
    elapsed = time.monotonic() - started

    assert text_of(events) == "ok"
    first, second = either.fake.exchanges
    assert first.status == 429
    assert second.received_at - first.received_at >= 1.0
    assert elapsed < 3.0  # the default back-off of the SDK is off: one wait, ours


async def test_retry_after_is_capped(either: Served) -> None:
    either.fake.script(either.rate_limited(30), Reply(chunks=["ok"]))

    started = time.monotonic()
    events = await collect(chain(either.provider, backoff_cap=0.2).stream(REQUEST))

    assert text_of(events) == "ok"
    assert 0.2 <= time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    "failure",
    [Reply(chunks=["lost"], error_after=0), Reply(chunks=["lost"], cut_after=0)],
    ids=["error event", "connection dropped"],
)
async def test_a_failure_before_any_text_is_retried(either: Served, failure: Reply) -> None:
    either.fake.script(failure, Reply(chunks=["second", " try"]))

    events = await collect(chain(either.provider).stream(REQUEST))

    assert text_of(events) == "second try"
    assert len(either.fake.exchanges) == 2


async def test_a_connection_dropped_mid_body_keeps_the_partial_text(either: Served) -> None:
    either.fake.script(Reply(chunks=["One", " two", " three"], cut_after=2))

    with pytest.raises(StreamInterrupted) as caught:
        await collect(chain(either.provider, OfflineProvider()).stream(REQUEST))

    assert caught.value.partial_text == "One two"
    assert caught.value.cause.retryable
    # Text was shown: neither a retry nor the next provider would be the same answer.
    assert len(either.fake.exchanges) == 1


async def test_stall_before_first_token_times_out_and_falls_back(either: Served) -> None:
    either.fake.script(Reply(stall=5))

    started = time.monotonic()
    events = await collect(
        chain(either.provider, OfflineProvider(), attempts=1, first_token_timeout=0.5).stream(REQUEST)
    )

    assert time.monotonic() - started < 2.0
    assert text_of(events) == NO_MODEL
    await wait_for(lambda: either.fake.exchanges[0].disconnected)


async def test_first_token_timeout_is_reported(either: Served) -> None:
    either.fake.script(Reply(stall=5), Reply(stall=5))

    with pytest.raises(NoProviderAnswered) as caught:
        await collect(chain(either.provider, attempts=2, first_token_timeout=0.3).stream(REQUEST))

    assert [f.retryable for f in caught.value.failures] == [True, True]
    assert all("no first token within 0.3s" in str(f) for f in caught.value.failures)


async def test_total_timeout_after_text_interrupts_with_the_partial_text(either: Served) -> None:
    either.fake.script(Reply(chunks=[f" w{i}" for i in range(50)], pace=0.1))

    with pytest.raises(StreamInterrupted) as caught:
        await collect(chain(either.provider, total_timeout=0.55).stream(REQUEST))

    assert caught.value.partial_text.startswith(" w0 w1 w2")
    assert "not complete within 0.55s" in str(caught.value.cause)


async def test_consumer_stopping_early_closes_the_http_stream(either: Served) -> None:
    either.fake.script(Reply.long(words=200, pace=0.02))
    received: list[str] = []

    async with aclosing(chain(either.provider).stream(REQUEST)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                received.append(event.text)
            if len(received) == 3:
                break

    exchange = either.fake.exchanges[0]
    await wait_for(lambda: exchange.disconnected)
    assert not exchange.finished
    assert len(exchange.token_times) < 200


async def test_cancelling_the_consumer_task_closes_the_http_stream(either: Served) -> None:
    either.fake.script(Reply.long(words=200, pace=0.02))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in chain(either.provider).stream(REQUEST):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await wait_for(lambda: either.fake.exchanges[0].disconnected)


# --- the chain's bookkeeping -----------------------------------------------------------------------


async def test_finish_carries_the_latency_of_the_answering_call(
    claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(chunks=["a", "b", "c", "d"], pace=0.05))

    finish = finish_of(await collect(chain(claude).stream(REQUEST)))

    assert 200 <= finish.latency_ms < 2000


async def test_the_fake_paces_tokens_and_records_when_each_left(
    claude: AnthropicProvider, fake_anthropic: fa.FakeAnthropic
) -> None:
    fake_anthropic.script(Reply(chunks=["a", "b", "c", "d"], pace=0.05))

    arrived: list[float] = []
    async for event in claude.stream(REQUEST):
        if isinstance(event, TextDelta):
            arrived.append(time.perf_counter())

    exchange = fake_anthropic.exchanges[0]
    sent = exchange.token_times
    assert len(sent) == 4
    assert exchange.first_byte_at is not None
    assert exchange.received_at <= exchange.first_byte_at <= sent[0]
    assert all(later - earlier >= 0.045 for earlier, later in itertools.pairwise(sent))
    # Same clock in one process: each delta arrives after the fake sent it.
    assert all(got >= left for got, left in zip(arrived, sent, strict=True))


async def test_the_fake_serves_its_log_for_other_processes(
    claude: AnthropicProvider,
    fake_anthropic: fa.FakeAnthropic,
    anthropic_url: str,
    http_client: httpx.AsyncClient,
) -> None:
    fake_anthropic.script(Reply(chunks=["x", "y"]))
    await collect(claude.stream(REQUEST))

    [logged] = (await http_client.get(f"{anthropic_url}/_fake/exchanges")).json()

    exchange = fake_anthropic.exchanges[0]
    assert logged["body"]["messages"][-1]["content"] == "What is the capital of Kenya?"
    assert (logged["first_byte_at"], logged["token_times"]) == (exchange.first_byte_at, exchange.token_times)
    assert logged["finished"] is True


async def test_a_chain_without_providers_says_so() -> None:
    with pytest.raises(NoProviderAnswered, match="no provider configured"):
        await collect(chain().stream(REQUEST))
