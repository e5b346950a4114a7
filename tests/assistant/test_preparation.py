"""Mentions are prepared a few at a time, so answers already streaming keep the event loop."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from mathia.app import create_app
from mathia.assistant.chain import build_chain
from mathia.assistant.streaming import Assistant, Turn
from mathia.auth.models import User
from mathia.config import Settings
from mathia.errors import InsufficientCredits
from mathia.rooms.models import Message, Room
from mathia.runtime import Runtime
from mathia.tokens import encoding
from tests import SECRET_KEY


async def test_no_more_mentions_are_prepared_at_once_than_the_setting_allows(app_settings: Settings) -> None:
    runtime = Runtime(msgspec.structs.replace(app_settings, ai_concurrent_preparations=2))
    preparing, most, refused = 0, 0, 0

    async def slow_credit_check(_turn: Turn, _session: object) -> None:
        nonlocal preparing, most, refused
        preparing += 1
        most = max(most, preparing)
        await asyncio.sleep(0.05)
        preparing -= 1
        refused += 1
        raise InsufficientCredits("the wallet is empty")

    assistant = Assistant(
        runtime, build_chain(runtime.settings, http_client=runtime.http), before=[slow_credit_check]
    )
    user = User(id=uuid.uuid4(), display_name="Ada")
    room = Room(id=uuid.uuid4(), tenant_id=uuid.uuid4(), name="general")
    try:
        await asyncio.gather(
            *(assistant.generate(Turn(user, room, Message(body="@mathia hi", seq=i))) for i in range(6))
        )
    finally:
        await runtime.aclose()
    assert refused == 6
    assert most == 2


def test_the_cap_must_let_at_least_one_mention_through() -> None:
    with pytest.raises(SystemExit, match="ai_concurrent_preparations"):
        Settings.from_env({"MATHIA_AI_CONCURRENT_PREPARATIONS": "0"}, secret_key=SECRET_KEY)


def test_the_app_builds_the_tokenizer_before_the_first_mention(app_settings: Settings) -> None:
    """Building it takes tens of milliseconds of CPU: inside a mention it would stall every stream."""
    encoding.cache_clear()
    create_app(app_settings)  # not started: nothing connects before the lifespan
    assert encoding.cache_info().currsize == 1
