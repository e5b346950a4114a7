"""Moderation with the offline classifier, real Redis streams and real workers."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from collections.abc import AsyncIterator
from uuid import UUID

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mathia.config import Settings
from mathia.db import database_config
from mathia.moderation.classifier import classifier_for
from mathia.moderation.models import FlagState, ModerationFlag, ModerationMute, ModerationPolicy
from mathia.moderation.services import (
    GROUP,
    STREAM,
    buffer_message,
    muted_until,
    record_verdicts,
    take_batch,
)
from mathia.rooms.models import Message, SenderKind
from mathia.rooms.realtime import user_channel
from mathia.rooms.services import post_message
from tests import SECRET_KEY
from tests.reminders.world import (
    World,
    eventually,
    frames,
    make_world,
    running_worker,
    session_on,
    worker_settings,
)

CLEAN = ["good morning team", "the build is green again", "lunch at noon?", "thanks for the review"]
ABUSIVE = ["you are a fucking idiot", "shut up you stupid bitch", "this is bullshit, asshole"]


@pytest.fixture
async def settings(postgres_url: str, redis_url: str) -> AsyncIterator[Settings]:
    settings = worker_settings(
        postgres_url,
        redis_url,
        moderation_interval=1,
        moderation_reclaim_seconds=2,
        moderation_batch_size=50,
        moderation_flag_limit=3,
        moderation_mute_seconds=600,
    )
    client = Redis.from_url(str(settings.redis_url))
    await client.flushdb()
    yield settings
    await client.aclose()


@pytest.fixture
async def pg(settings: Settings) -> AsyncIterator[AsyncSession]:
    async with session_on(settings) as session:
        yield session


@pytest.fixture
async def stream(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(str(settings.redis_url))
    yield client
    await client.aclose()


async def send(
    session: AsyncSession, stream: Redis, world: World, user_index: int, bodies: list[str]
) -> list[Message]:
    sender = world.members[user_index]
    messages = [
        await post_message(
            session, room=world.room, body=body, sender_kind=SenderKind.USER, sender_id=sender.id
        )
        for body in bodies
    ]
    await session.commit()
    for message in messages:
        await buffer_message(stream, message)
    return messages


async def flags_of(session: AsyncSession, world: World) -> list[ModerationFlag]:
    return list(
        await session.scalars(
            select(ModerationFlag)
            .where(ModerationFlag.tenant_id == world.workspace.id)
            .execution_options(populate_existing=True)
        )
    )


async def drained(stream: Redis) -> bool:
    """Every buffered message judged and acknowledged (False until a worker made the group)."""
    try:
        pending = await stream.xpending(STREAM, GROUP)
    except ResponseError:
        return False
    return await stream.xlen(STREAM) == 0 and pending["pending"] == 0


async def test_offline_classifier_separates_clean_from_abusive() -> None:
    verdicts = await classifier_for(Settings.from_env({}, secret_key=SECRET_KEY)).classify(CLEAN + ABUSIVE)
    assert [v.abusive for v in verdicts] == [False] * len(CLEAN) + [True] * len(ABUSIVE)
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)


async def test_worker_flags_the_abusive_messages_of_a_mixed_batch(
    settings: Settings, pg: AsyncSession, stream: Redis, redis: Redis
) -> None:
    world = await make_world(pg)
    clean = await send(pg, stream, world, 0, CLEAN)
    abusive = await send(pg, stream, world, 1, ABUSIVE[:2])
    # Assistant messages are not people's: never buffered.
    bot = await post_message(pg, room=world.room, body="fucking hell", sender_kind=SenderKind.ASSISTANT)
    await pg.commit()
    await buffer_message(stream, bot)
    assert await stream.xlen(STREAM) == len(clean) + len(abusive)

    async with running_worker(settings):
        await eventually(lambda: drained(stream))
    flags = await flags_of(pg, world)
    assert {f.message_id for f in flags} == {m.id for m in abusive}
    assert {f.user_id for f in flags} == {world.members[1].id}
    assert all(f.state == FlagState.ACTIVE and f.score >= 0.8 for f in flags)
    # Two flags, under the limit of three: not muted.
    assert await muted_until(pg, world.workspace.id, world.members[1].id) is None


async def test_past_the_limit_the_user_is_muted_and_told(
    settings: Settings, pg: AsyncSession, stream: Redis, redis: Redis
) -> None:
    world = await make_world(pg)
    offender = world.members[0]
    async with frames(redis, user_channel(offender.id), user_channel(world.owner.id)) as received:
        await send(pg, stream, world, 0, ABUSIVE)
        async with running_worker(settings):
            await eventually(lambda: drained(stream))
            await eventually(lambda: _true_when(len(received) >= 2))
    until = await muted_until(pg, world.workspace.id, offender.id)
    assert until is not None
    assert dt.timedelta(seconds=590) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=600)
    assert {f.state for f in await flags_of(pg, world)} == {FlagState.ACTIONED}
    by_kind = {f["kind"]: f for f in received}
    assert by_kind["moderation.muted"]["until"] == until.isoformat()
    assert by_kind["moderation.user_muted"]["user_id"] == str(offender.id)
    assert by_kind["moderation.user_muted"]["flags"] == 3
    # Someone else in the same workspace is not muted, nor is the offender elsewhere.
    assert await muted_until(pg, world.workspace.id, world.members[1].id) is None
    other = await make_world(pg)
    assert await muted_until(pg, other.workspace.id, offender.id) is None


async def _true_when(value: bool) -> bool:
    return value


async def test_mute_expires_and_workspace_policy_applies(
    settings: Settings, pg: AsyncSession, stream: Redis
) -> None:
    world = await make_world(pg)
    pg.add(ModerationPolicy(tenant_id=world.workspace.id, flag_limit=1, mute_seconds=60))
    await pg.commit()
    await send(pg, stream, world, 0, ABUSIVE[:1])  # one flag is enough under this workspace's policy
    batch = await take_batch(stream, "test", 10, reclaim_seconds=60)
    decisions = await record_verdicts(
        pg, settings, batch, await classifier_for(settings).classify([b.body for b in batch])
    )
    await pg.commit()
    assert [d.user_id for d in decisions] == [world.members[0].id]
    until = await muted_until(pg, world.workspace.id, world.members[0].id)
    assert until is not None and until - decisions[0].until == dt.timedelta(0)
    # Time passes: the mute is over.
    await pg.execute(
        update(ModerationMute)
        .values(until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        .where(ModerationMute.tenant_id == world.workspace.id)
    )
    await pg.commit()
    assert await muted_until(pg, world.workspace.id, world.members[0].id) is None


async def test_a_batch_taken_but_not_acknowledged_is_judged_again_and_counted_once(
    settings: Settings, pg: AsyncSession, stream: Redis
) -> None:
    world = await make_world(pg)
    messages = await send(pg, stream, world, 0, ABUSIVE[:2] + CLEAN)
    # A worker takes the batch, commits its flags, and dies before acknowledging.
    batch = await take_batch(stream, "dead-worker", 50, reclaim_seconds=60)
    assert len(batch) == len(messages)
    await record_verdicts(
        pg, settings, batch, await classifier_for(settings).classify([b.body for b in batch])
    )
    await pg.commit()
    assert (await stream.xpending(STREAM, GROUP))["pending"] == len(messages)

    async with running_worker(settings):  # reclaims after moderation_reclaim_seconds
        await eventually(lambda: drained(stream))
    flags = await flags_of(pg, world)
    assert sorted(f.message_id for f in flags) == sorted(m.id for m in messages[:2])
    assert await muted_until(pg, world.workspace.id, world.members[0].id) is None  # 2 < 3: not double counted


async def test_worker_killed_mid_batch_then_restarted_loses_nothing(
    settings: Settings, pg: AsyncSession, stream: Redis
) -> None:
    world = await make_world(pg, members=40)
    # 40 people, one abusive message each and several clean ones: nobody reaches the limit.
    messages: list[Message] = []
    for index in range(40):
        messages += await send(pg, stream, world, index, [ABUSIVE[index % 3], *CLEAN])
    expected = {m.id for m in messages if m.body in ABUSIVE}
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "REDIS_URL": str(settings.redis_url),
        "MATHIA_SECRET_KEY": SECRET_KEY,
        "MATHIA_MODERATION_INTERVAL": "1",
        "MATHIA_MODERATION_RECLAIM_SECONDS": "2",
        "MATHIA_MODERATION_BATCH_SIZE": "50",
        # Holds each judged batch (flags committed, not acknowledged) this long: the kill lands
        # there every time. Under the job's 20 s timeout, so saq never cancels the hold itself.
        "MATHIA_MODERATION_HOLD_SECONDS": "15",
    }
    code = (
        "from mathia.config import Settings; from mathia import jobs; jobs.main_worker(Settings.from_env())"
    )
    worker = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env)
    try:
        # Kill it hard while it holds its first batch: judged and flagged, not acknowledged.
        async def holding() -> bool:
            try:
                pending = int((await stream.xpending(STREAM, GROUP))["pending"])
            except ResponseError:  # the worker has not made the group yet
                return False
            return pending > 0 and len(await flags_of(pg, world)) > 0

        await eventually(holding, within=60, interval=0.05)
        worker.send_signal(signal.SIGKILL)
    finally:
        if worker.returncode is None:
            worker.kill()
        await worker.wait()
    # It died holding whole batches (a worker may run two moderation jobs at once), whose flags
    # are all it wrote, and nothing was acknowledged.
    assert await stream.xlen(STREAM) == len(messages)
    by_entry = {entry: UUID(fields[b"message_id"].decode()) for entry, fields in await stream.xrange(STREAM)}
    held = {by_entry[p["message_id"]] for p in await stream.xpending_range(STREAM, GROUP, "-", "+", 1000)}
    assert len(held) in (50, 100)
    assert set() < {f.message_id for f in await flags_of(pg, world)} <= held & expected

    async with running_worker(settings):
        await eventually(lambda: drained(stream), within=60)
    flags = await flags_of(pg, world)
    assert len(flags) == len(expected)
    assert {f.message_id for f in flags} == expected
    assert (
        await pg.scalar(
            select(func.count())
            .select_from(ModerationMute)
            .where(ModerationMute.tenant_id == world.workspace.id, ModerationMute.until.is_not(None))
        )
        == 0
    )


async def test_two_runs_judging_one_user_at_once_still_mute_at_the_limit(
    settings: Settings, pg: AsyncSession, stream: Redis
) -> None:
    world = await make_world(pg)
    pg.add(ModerationPolicy(tenant_id=world.workspace.id, flag_limit=2, mute_seconds=60))
    await pg.commit()
    messages = await send(pg, stream, world, 0, ABUSIVE[:2])
    first, second = await take_batch(stream, "a", 1, 60), await take_batch(stream, "b", 1, 60)
    verdicts = await classifier_for(settings).classify([b.body for b in first + second])
    engine = database_config(settings).get_engine()
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    # Two workers' runs, each with one of the user's two flags, in overlapping transactions:
    # the second counts while the first has not committed yet, and must still see its flag.
    async with sessions() as one, sessions() as two:
        await record_verdicts(one, settings, first, verdicts[:1])
        later = asyncio.create_task(record_verdicts(two, settings, second, verdicts[1:]))
        await asyncio.sleep(0.5)  # time enough for the second to count, were it not made to wait
        await one.commit()
        await later
        await two.commit()
    await engine.dispose()
    assert {f.message_id for f in await flags_of(pg, world)} == {m.id for m in messages}
    assert await muted_until(pg, world.workspace.id, world.members[0].id) is not None
