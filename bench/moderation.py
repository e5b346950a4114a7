"""Offline moderation throughput: messages classified per second.

    uv run python bench/moderation.py [--messages 5000] [--batch 200]

Two numbers: the offline classifier alone on batches of `--batch` messages, and the whole
path (messages stored on PostgreSQL and buffered in the Redis stream, then drained by one
in-process worker: take a batch, classify, record flags, acknowledge). Uses a scratch
database (see bench/reminders.py) and Redis database 14 of MATHIA_BENCH_REDIS (flushed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select

from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import database_config, session_scope
from mathia.jobs import run_worker
from mathia.moderation.classifier import OfflineClassifier
from mathia.moderation.models import ModerationFlag
from mathia.moderation.services import GROUP, STREAM, buffer_message
from mathia.rooms.models import Room, RoomMember, SenderKind
from mathia.rooms.services import post_message
from mathia.tenants.models import Membership, Role, Workspace
from reminders import scratch_database

REDIS = os.environ.get("MATHIA_BENCH_REDIS", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"
PHRASES = [
    "good morning team",
    "the build is green again",
    "can someone review my pull request before lunch?",
    "lunch at noon?",
    "you are a fucking idiot",
    "thanks, that fixed it",
    "shut up, nobody asked you",
    "meeting moved to 3pm, same room",
]


def bodies(count: int) -> list[str]:
    return [f"{PHRASES[i % len(PHRASES)]} ({i})" for i in range(count)]


async def classifier_only(count: int, batch: int) -> None:
    classifier = OfflineClassifier(0.8, batch)
    await classifier.classify(["warm up: loads the model"])
    texts = bodies(count)
    started = time.perf_counter()
    for start in range(0, count, batch):
        await classifier.classify(texts[start : start + batch])
    elapsed = time.perf_counter() - started
    print(f"classifier alone: {count} messages in {elapsed:.2f} s = {count / elapsed:,.0f} messages/s")


async def whole_path(url: str, count: int, batch: int) -> None:
    settings = Settings.from_env(
        {},
        database_url=url,
        redis_url=REDIS,
        secret_key=secrets.token_urlsafe(32),
        moderation_batch_size=batch,
        moderation_interval=1,
        # Nobody is muted: every flag stays counted, which is the slower path.
        moderation_flag_limit=10**9,
    )
    redis = Redis.from_url(REDIS)
    await redis.flushdb()
    config = database_config(settings)
    async with session_scope(config) as session:
        user = User(email="sender@bench.example", display_name="Sender", password_hash="x")
        session.add(user)
        await session.flush()
        workspace = Workspace(name="bench", created_by=user.id)
        session.add(workspace)
        await session.flush()
        room = Room(tenant_id=workspace.id, name="general", private=False, created_by=user.id)
        session.add_all([Membership(tenant_id=workspace.id, user_id=user.id, role=Role.MEMBER), room])
        await session.flush()
        session.add(RoomMember(tenant_id=workspace.id, room_id=room.id, user_id=user.id))
        messages = [
            await post_message(session, room=room, body=body, sender_kind=SenderKind.USER, sender_id=user.id)
            for body in bodies(count)
        ]
    for message in messages:
        await buffer_message(redis, message)

    async def drained() -> bool:
        with contextlib.suppress(ResponseError):  # the group does not exist until the worker made it
            return await redis.xlen(STREAM) == 0 and (await redis.xpending(STREAM, GROUP))["pending"] == 0
        return False

    worker = asyncio.create_task(run_worker(settings))
    started = time.perf_counter()
    while not await drained():  # noqa: ASYNC110 (polls Redis)
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    async with session_scope(config) as session:
        flags = await session.scalar(select(func.count()).select_from(ModerationFlag))
    await config.get_engine().dispose()
    await redis.aclose()
    print(
        f"whole path, one worker (start-up and model load included): {count} messages in {elapsed:.2f} s "
        f"= {count / elapsed:,.0f} messages/s; {flags} flagged"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(classifier_only(args.messages, args.batch))
    with scratch_database() as url:
        asyncio.run(whole_path(url, args.messages, args.batch))


if __name__ == "__main__":
    main()
