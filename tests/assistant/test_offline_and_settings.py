"""The offline provider's honesty and rules, and the chain that settings build."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from mathia.assistant.chain import build_chain
from mathia.assistant.offline import NO_MODEL, OfflineProvider, new_call_id
from mathia.assistant.providers import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    TextDelta,
    ToolCall,
    ToolResult,
)
from mathia.config import Settings
from tests import SECRET_KEY
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.llm import Reply


def ask(text: str) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", "earlier question"), ChatMessage("user", text)])


async def collect(provider: OfflineProvider, request: ChatRequest) -> list[Event]:
    return [event async for event in provider.stream(request)]


def weather_rule(text: str) -> ToolCall | None:
    match = re.search(r"weather in (\w+)", text, re.IGNORECASE)
    return ToolCall(new_call_id(), "get_weather", {"city": match[1]}) if match else None


def greeting_rule(text: str) -> str | None:
    return "Hello! (No AI model is configured, but greetings work.)" if text.lower() == "hi" else None


async def test_without_a_rule_it_says_plainly_that_no_model_is_configured() -> None:
    events = await collect(OfflineProvider([weather_rule]), ask("Write me a poem about the sea"))

    assert events[0] == TextDelta(NO_MODEL)
    assert "No AI model is configured" in NO_MODEL
    assert events[1] == Finish(
        provider="offline", model="none", input_tokens=0, output_tokens=0, stop_reason="end_turn"
    )


async def test_a_rule_can_request_an_action_from_the_latest_user_text() -> None:
    events = await collect(
        OfflineProvider([greeting_rule, weather_rule]), ask("What's the weather in Eldoret?")
    )

    call = events[0]
    assert isinstance(call, ToolCall)
    assert (call.name, call.arguments) == ("get_weather", {"city": "Eldoret"})
    assert call.id.startswith("offline_")
    assert isinstance(events[1], Finish)
    assert events[1].stop_reason == "tool_use"

    # Asked again with the action's result, it answers with the result, and no rule runs again.
    results = [ToolResult(call.id, "Eldoret: 18 °C, light rain")]
    again = await collect(
        OfflineProvider([weather_rule]),
        ask("What's the weather in Eldoret?").after_tools("", [call], results),
    )
    assert again[0] == TextDelta("Eldoret: 18 °C, light rain")
    assert isinstance(again[1], Finish) and again[1].stop_reason == "end_turn"


async def test_the_first_rule_that_answers_wins() -> None:
    events = await collect(OfflineProvider([greeting_rule, lambda _: "second"]), ask("hi"))

    assert events[0] == TextDelta("Hello! (No AI model is configured, but greetings work.)")


def names(settings: Settings, client: httpx.AsyncClient) -> list[str]:
    return [provider.name for provider in build_chain(settings, http_client=client).providers]


async def test_settings_pick_the_providers_offline_always_last() -> None:
    both = {
        "ANTHROPIC_API_KEY": "a",
        "MATHIA_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "MATHIA_OPENAI_API_KEY": "o",
    }
    async with httpx.AsyncClient() as client:
        assert names(Settings.from_env({}, secret_key=SECRET_KEY), client) == ["offline"]
        assert names(Settings.from_env({"ANTHROPIC_API_KEY": "a"}, secret_key=SECRET_KEY), client) == [
            "anthropic",
            "offline",
        ]
        # A base URL without a key is not a configured provider.
        assert names(
            Settings.from_env({"MATHIA_OPENAI_BASE_URL": "http://x/v1"}, secret_key=SECRET_KEY), client
        ) == ["offline"]
        assert names(Settings.from_env(both, secret_key=SECRET_KEY), client) == [
            "anthropic",
            "openai",
            "offline",
        ]
        reordered = Settings.from_env(
            {**both, "MATHIA_AI_PROVIDER_ORDER": "openai, anthropic"}, secret_key=SECRET_KEY
        )
        assert names(reordered, client) == ["openai", "anthropic", "offline"]
        with pytest.raises(ValueError, match="ai_provider_order: unknown provider"):
            build_chain(
                Settings.from_env({"MATHIA_AI_PROVIDER_ORDER": "gemini"}, secret_key=SECRET_KEY),
                http_client=client,
            )


async def test_a_chain_from_settings_reaches_the_configured_anthropic(
    fake_anthropic: FakeAnthropic, anthropic_url: str
) -> None:
    settings = Settings.from_env(
        {
            "ANTHROPIC_API_KEY": fake_anthropic.api_key,
            "ANTHROPIC_BASE_URL": anthropic_url,
            "MATHIA_ANTHROPIC_MODEL": "claude-configured",
            "MATHIA_AI_MAX_TOKENS": "77",
        },
        secret_key=SECRET_KEY,
    )
    fake_anthropic.script(Reply(chunks=["configured"]))
    async with httpx.AsyncClient() as client:
        chain = build_chain(settings, http_client=client)
        try:
            events = [event async for event in chain.stream(ask("hello"))]
        finally:
            await chain.aclose()

    assert events[0] == TextDelta("configured")
    assert fake_anthropic.requests[0]["model"] == "claude-configured"
    assert fake_anthropic.requests[0]["max_tokens"] == 77


@pytest.mark.parametrize(
    "provider",
    [
        {"ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "{url}"},
        {"MATHIA_OPENAI_API_KEY": "o", "MATHIA_OPENAI_BASE_URL": "{url}/v1"},
    ],
    ids=["anthropic", "openai"],
)
async def test_a_model_server_that_never_accepts_is_left_at_the_connect_timeout(
    provider: dict[str, str], unanswered_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {name: value.format(url=unanswered_url) for name, value in provider.items()}
    environ |= {"MATHIA_AI_CONNECT_TIMEOUT": "0.3", "MATHIA_AI_ATTEMPTS": "1"}
    settings = Settings.from_env(environ, secret_key=SECRET_KEY)
    assert settings.ai_first_token_timeout > 2  # so only the connect timeout can end the call this soon
    async with httpx.AsyncClient() as client:
        chain = build_chain(settings, http_client=client)
        started = time.perf_counter()
        try:
            events = [event async for event in chain.stream(ask("hello"))]
        finally:
            await chain.aclose()
    assert time.perf_counter() - started < 2
    assert events[0] == TextDelta(NO_MODEL)  # the next provider answered
    assert "timed out" in caplog.text.lower()


@pytest.fixture
def unanswered_url() -> Iterator[str]:
    """A port whose accept queue is full: the kernel drops new connection attempts unanswered."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        waiting = [socket.socket() for _ in range(3)]
        for client in waiting:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for client in waiting:
                client.close()


def test_the_default_model_is_not_one_the_sdk_calls_retired() -> None:
    # The SDK warns, and the API will refuse, once a model passes its end-of-life date.
    from anthropic.resources.messages.messages import DEPRECATED_MODELS

    assert Settings.from_env({}, secret_key=SECRET_KEY).anthropic_model not in DEPRECATED_MODELS
