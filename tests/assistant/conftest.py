from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with fake.running() as base_url:
        yield fake, base_url


@pytest.fixture(scope="session")
def openai_server() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with fake.running() as base_url:
        yield fake, base_url


@pytest.fixture
def fake_anthropic(anthropic_server: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    """The running fake, with an empty script and request log."""
    anthropic_server[0].reset()
    return anthropic_server[0]


@pytest.fixture
def fake_openai(openai_server: tuple[FakeOpenAI, str]) -> FakeOpenAI:
    openai_server[0].reset()
    return openai_server[0]


@pytest.fixture
def anthropic_url(anthropic_server: tuple[FakeAnthropic, str]) -> str:
    return anthropic_server[1]


@pytest.fixture
def openai_url(openai_server: tuple[FakeOpenAI, str]) -> str:
    return openai_server[1] + "/v1"


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client
