"""The model-backed classifier against the fake Anthropic API: one call per batch, verdicts
parsed and validated, anything unusable judged offline instead; and a real worker using it."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.models import AIUsage
from mathia.assistant.providers import Finish
from mathia.config import Settings
from mathia.moderation.classifier import ModelClassifier, classifier_for
from mathia.moderation.models import ModerationFlag
from mathia.moderation.services import Buffered, bill_model_call, buffer_message
from mathia.rooms.models import SenderKind
from mathia.rooms.services import post_message
from mathia.wallet.services import open_workspace_account, statement
from tests import SECRET_KEY
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.llm import prompt_words
from tests.reminders.world import World, eventually, make_world, running_worker, session_on, worker_settings

TEXTS = ["good morning team", "you are worthless and everyone here knows it", "lunch at noon?"]
WORKER_TEXTS = [*TEXTS, "nobody here would miss you if you left"]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic()
    with fake.running() as url:
        yield fake, url


@pytest.fixture
def fake(fake_server: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    fake_server[0].reset()
    return fake_server[0]


@pytest.fixture
def model_settings(fake_server: tuple[FakeAnthropic, str]) -> Settings:
    fake, url = fake_server
    return Settings.from_env(
        {}, secret_key=SECRET_KEY, anthropic_api_key=fake.api_key, anthropic_base_url=url, ai_attempts=1
    )


@pytest.fixture
async def classifier(model_settings: Settings) -> AsyncIterator[ModelClassifier]:
    async with httpx.AsyncClient() as http:
        chosen = classifier_for(model_settings, http)
        assert isinstance(chosen, ModelClassifier)
        yield chosen
        await chosen.aclose()


def answer(*verdicts: tuple[int, bool, float]) -> list[str]:
    """A JSON answer as a model streams it: in small pieces."""
    text = msgspec.json.encode(
        {"verdicts": [{"index": i, "abusive": a, "score": s, "reason": f"why {i}"} for i, a, s in verdicts]}
    ).decode()
    return [text[i : i + 7] for i in range(0, len(text), 7)]


async def test_one_call_per_batch_and_a_verdict_per_message(
    classifier: ModelClassifier, fake: FakeAnthropic
) -> None:
    # Out of order, in a code fence: still one verdict per message, in message order.
    fake.script(
        Reply(chunks=["```json\n", *answer((2, False, 0.01), (0, False, 0.02), (1, True, 0.91)), "\n```"])
    )
    verdicts = await classifier.classify(TEXTS)
    assert [(v.abusive, v.score, v.reason) for v in verdicts] == [
        (False, 0.02, "model: why 0"),
        (True, 0.91, "model: why 1"),
        (False, 0.01, "model: why 2"),
    ]
    [exchange] = fake.exchanges
    sent = exchange.body
    assert "moderate a team chat" in str(sent["system"])
    [message] = sent["messages"]
    content = message["content"] if isinstance(message["content"], str) else message["content"][0]["text"]
    assert msgspec.json.decode(content) == [{"index": i, "text": t} for i, t in enumerate(TEXTS)]
    assert "tools" not in sent or not sent["tools"]


@pytest.mark.parametrize(
    "chunks",
    [
        ["I'm sorry, I can't help with that."],
        answer((0, False, 0.1), (1, True, 0.9)),  # one message left unjudged
        answer((0, False, 0.1), (1, True, 0.9), (1, True, 0.9)),  # one judged twice, one not
        answer((0, False, 0.1), (1, True, 1.5), (2, False, 0.0)),  # a score out of range
        ['{"verdicts": [{"index": 0, "abusive": "maybe"'],  # cut short
    ],
)
async def test_an_unusable_answer_sends_the_batch_offline_and_is_logged(
    classifier: ModelClassifier, fake: FakeAnthropic, chunks: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Reply(chunks=chunks))
    with caplog.at_level(logging.WARNING, logger="mathia.moderation.classifier"):
        verdicts = await classifier.classify(TEXTS)
    offline = await classifier.fallback.classify(TEXTS)
    assert verdicts == offline
    assert all(v.reason.startswith("offline classifier") for v in verdicts)
    assert len(fake.exchanges) == 1
    assert "judging them offline" in caplog.text


async def test_a_model_too_slow_for_the_job_sends_the_batch_offline(
    model_settings: Settings, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script(Reply(chunks=answer((0, False, 0.1), (1, True, 0.9), (2, False, 0.1)), stall=3))
    async with httpx.AsyncClient() as http:
        slow = classifier_for(msgspec.structs.replace(model_settings, moderation_model_timeout=0.5), http)
        assert isinstance(slow, ModelClassifier)
        await slow.fallback.classify(["loads the offline model, which is not what is timed"])
        started = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="mathia.moderation.classifier"):
            verdicts = await slow.classify(TEXTS)
        elapsed = time.perf_counter() - started
        await slow.aclose()
    assert all(v.reason.startswith("offline classifier") for v in verdicts)
    assert elapsed < 2.5
    assert "no verdicts from the model within 0.5 s" in caplog.text


async def test_without_a_model_the_offline_classifier_judges(fake: FakeAnthropic) -> None:
    async with httpx.AsyncClient() as http:
        chosen = classifier_for(Settings.from_env({}, secret_key=SECRET_KEY), http)
    assert not isinstance(chosen, ModelClassifier)
    assert [v.abusive for v in await chosen.classify(["you stupid bitch"])] == [True]
    assert fake.exchanges == []


async def test_a_worker_with_a_model_flags_what_the_model_judges_abusive(
    postgres_url: str, redis_url: str, fake: FakeAnthropic, model_settings: Settings
) -> None:
    settings = worker_settings(
        postgres_url,
        redis_url,
        anthropic_api_key=model_settings.anthropic_api_key,
        anthropic_base_url=model_settings.anthropic_base_url,
        moderation_interval=1,
        moderation_model_batch_size=2,
    )
    redis = Redis.from_url(str(settings.redis_url))
    await redis.flushdb()
    async with session_on(settings) as pg:
        world = await make_world(pg)
        await open_workspace_account(pg, world.workspace.id, 1_000_000)
        messages = [
            await post_message(
                pg, room=world.room, body=body, sender_kind=SenderKind.USER, sender_id=world.members[0].id
            )
            for body in WORKER_TEXTS
        ]
        await pg.commit()
        # The offline classifier lets the veiled insults through; the model does not.
        offline = await classifier_for(settings).classify(WORKER_TEXTS)
        assert not any(v.abusive for v in offline)
        # Batches of two with a model: two calls, each judging its own messages from index 0 (one
        # answer fits both, whichever of the worker's runs takes which batch).
        verdicts = Reply(chunks=answer((0, False, 0.01), (1, True, 0.88)))
        fake.script(verdicts, verdicts)
        for message in messages:
            await buffer_message(redis, message)
        in_workspace = select(ModerationFlag).where(ModerationFlag.tenant_id == world.workspace.id)

        async def both_flagged() -> bool:
            return len((await pg.scalars(in_workspace)).all()) == 2

        async with running_worker(settings):
            await eventually(both_flagged)
        flags = (await pg.scalars(in_workspace)).all()
        usage = (await pg.scalars(select(AIUsage).where(AIUsage.tenant_id == world.workspace.id))).all()
        charged = await statement(pg, world.workspace.id, None, 50)
    await redis.aclose()
    assert {f.message_id for f in flags} == {messages[1].id, messages[3].id}
    assert {(f.score, f.reason) for f in flags} == {(0.88, "model: why 1")}
    assert [e.body["max_tokens"] for e in fake.exchanges] == [170, 170]
    # Both calls are recorded as the workspace's AI usage, without a user, and paid from its wallet.
    assert sorted((u.provider, u.user_id, u.input_tokens, u.output_tokens) for u in usage) == sorted(
        ("anthropic", None, prompt_words(e.body), len(verdicts.chunks)) for e in fake.exchanges
    )
    moderation = [line for line in charged.items if line.memo.startswith("moderation, ")]
    assert len(moderation) == 2 and all(line.amount < 0 for line in moderation)


async def test_a_batch_is_billed_to_each_workspace_for_its_share_once(session: AsyncSession) -> None:
    """On both databases: a batch mixing two workspaces' messages splits its model call by message
    count. Judged again after a crash, the batch's second call is recorded (it happened) but
    charges nothing more."""
    ours, theirs = await make_world(session), await make_world(session)
    for world in (ours, theirs):
        await open_workspace_account(session, world.workspace.id, 1_000_000)

    def buffered(world: World, n: int) -> Buffered:
        return Buffered(f"1-{n}", uuid.uuid4(), world.workspace.id, world.room.id, world.owner.id, "hi")

    batch = [buffered(ours, 0), buffered(theirs, 1), buffered(ours, 2)]
    call = Finish("anthropic", "claude-test", input_tokens=90, output_tokens=30, stop_reason="end_turn")
    prices = '{"*": {"input": 1000000, "output": 2000000}}'
    settings = Settings.from_env({}, secret_key=SECRET_KEY, wallet_prices=prices)
    for _ in range(2):
        await bill_model_call(session, settings, batch, call)
    await session.commit()

    for world, (tokens_in, tokens_out) in ((ours, (60, 20)), (theirs, (30, 10))):
        in_workspace = select(AIUsage).where(AIUsage.tenant_id == world.workspace.id)
        usage = (await session.scalars(in_workspace)).all()
        assert [(u.input_tokens, u.output_tokens, u.user_id) for u in usage] == [
            (tokens_in, tokens_out, None)
        ] * 2
        lines = (await statement(session, world.workspace.id, None, 10)).items
        memo = f"moderation, claude-test: {tokens_in} input and {tokens_out} output tokens"
        assert [(line.amount, line.memo) for line in lines if line.amount < 0] == [
            (-(tokens_in + 2 * tokens_out), memo)
        ]
