"""Providers tried in order, with retries, back-off and deadlines; itself a provider.

A retryable failure before any content (429 but a spend limit, 529, 5xx, a
timeout, a lost connection) is retried on the same provider after a back-off
that honours `retry-after` (capped), up to `attempts` times; then, or at once on
a failure that no retry would fix, the next provider is tried. Once text or a
tool call has been streamed nothing is retried: the caller has shown it, so the
failure surfaces as `StreamInterrupted` with the partial text.

Deadlines apply to every provider alike: the first content (text or tool call)
must come within `first_token_timeout` of the call's start, and the whole answer
within `total_timeout`. The connect timeout is set on each provider's client.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing

import httpx
import msgspec

from mathia.assistant.anthropic_provider import AnthropicProvider
from mathia.assistant.offline import OfflineProvider, Rule
from mathia.assistant.openai_provider import OpenAICompatibleProvider
from mathia.assistant.providers import (
    ChatRequest,
    Event,
    Finish,
    NoProviderAnswered,
    Provider,
    ProviderError,
    StreamInterrupted,
    TextDelta,
)
from mathia.config import Settings

log = logging.getLogger(__name__)


class ProviderChain:
    name = "chain"

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        first_token_timeout: float = 20.0,
        total_timeout: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.providers = list(providers)
        self.attempts = max(1, attempts)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.first_token_timeout = first_token_timeout
        self.total_timeout = total_timeout
        self.sleep = sleep

    @property
    def model(self) -> str:
        return self.providers[0].model if self.providers else "none"

    async def aclose(self) -> None:
        for provider in self.providers:
            await provider.aclose()

    def delay(self, attempt: int, requested: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1`: the server's wish, else jittered doubling."""
        if requested is not None:
            return min(requested, self.backoff_cap)
        return min(self.backoff_cap, self.backoff_base * 2.0**attempt) * random.uniform(0.5, 1.0)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]:
        failures: list[ProviderError] = []
        for provider in self.providers:
            for attempt in range(self.attempts):
                partial: list[str] = []
                streamed = False
                started = time.perf_counter()
                try:
                    async with aclosing(self._deadlines(provider, request)) as events:
                        async for event in events:
                            if isinstance(event, Finish):
                                latency_ms = round((time.perf_counter() - started) * 1000)
                                event = msgspec.structs.replace(event, latency_ms=latency_ms)
                            else:
                                streamed = True
                                if isinstance(event, TextDelta):
                                    partial.append(event.text)
                            yield event
                    return
                except ProviderError as error:
                    if streamed:
                        raise StreamInterrupted("".join(partial), error) from error
                    failures.append(error)
                    log.warning("model call failed (attempt %d): %s", attempt + 1, error)
                    if not error.retryable or attempt + 1 == self.attempts:
                        break
                    await self.sleep(self.delay(attempt, error.retry_after))
        raise NoProviderAnswered(failures)

    async def _deadlines(self, provider: Provider, request: ChatRequest) -> AsyncGenerator[Event, None]:
        """The provider's events, failing with a retryable ProviderError when a deadline passes."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        total_deadline = start + self.total_timeout
        first_deadline = min(total_deadline, start + self.first_token_timeout)
        waiting_first = True
        async with aclosing(provider.stream(request)) as events:
            while True:
                deadline = first_deadline if waiting_first else total_deadline
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    what = "no first token" if waiting_first else "the answer was not complete"
                    limit = self.first_token_timeout if waiting_first else self.total_timeout
                    raise ProviderError(provider.name, f"{what} within {limit:g}s", retryable=True) from None
                if not isinstance(event, Finish):
                    waiting_first = False
                yield event


def build_chain(
    settings: Settings,
    *,
    http_client: httpx.AsyncClient,
    rules: Sequence[Rule] = (),
) -> ProviderChain:
    """The configured providers in `ai_provider_order`, then the offline provider (with `rules`)."""
    available: dict[str, Provider] = {}
    if settings.anthropic_api_key:
        available["anthropic"] = AnthropicProvider(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            model=settings.anthropic_model,
            max_tokens=settings.ai_max_tokens,
            connect_timeout=settings.ai_connect_timeout,
            read_timeout=settings.ai_total_timeout,
        )
    if settings.openai_base_url and settings.openai_api_key:
        available["openai"] = OpenAICompatibleProvider(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            max_tokens=settings.ai_max_tokens,
            client=http_client,
            connect_timeout=settings.ai_connect_timeout,
            read_timeout=settings.ai_total_timeout,
        )
    order = [name.strip() for name in settings.ai_provider_order.split(",") if name.strip()]
    unknown = sorted(set(order) - {"anthropic", "openai"})
    if unknown:
        raise ValueError(f"ai_provider_order: unknown provider(s) {', '.join(unknown)}")
    providers = [available[name] for name in order if name in available]
    providers += [p for name, p in available.items() if name not in order]
    providers.append(OfflineProvider(rules))
    return ProviderChain(
        providers,
        attempts=settings.ai_attempts,
        backoff_base=settings.ai_backoff_base,
        backoff_cap=settings.ai_backoff_cap,
        first_token_timeout=settings.ai_first_token_timeout,
        total_timeout=settings.ai_total_timeout,
    )
