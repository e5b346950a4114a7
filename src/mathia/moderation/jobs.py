from __future__ import annotations

import asyncio
import time

from mathia.db import session_scope
from mathia.jobs import JobContext, cron, every_seconds
from mathia.moderation.classifier import Classifier, classifier_for
from mathia.moderation.services import acknowledge, bill_model_call, mute_frames, record_verdicts, take_batch
from mathia.rooms.realtime import notify_user

# The job's timeout is 20 s and the reclaim idle time 30 s by default: a live run stops taking
# batches well before either, so nobody reclaims what it is still working on.
_BUDGET_SECONDS = 10


@cron(lambda settings: every_seconds(settings.moderation_interval), timeout=20)
async def moderate_messages(ctx: JobContext) -> int:
    """Classify buffered messages batch by batch until the buffer is drained or the time budget
    is spent; returns how many were judged."""
    runtime = ctx["runtime"]
    settings = runtime.settings
    classifier = classifier_for(settings, runtime.http)
    try:
        return await _drain(ctx, classifier)
    finally:
        await classifier.aclose()


async def _drain(ctx: JobContext, classifier: Classifier) -> int:
    runtime = ctx["runtime"]
    settings = runtime.settings
    deadline = time.monotonic() + _BUDGET_SECONDS
    judged = 0
    while time.monotonic() < deadline:
        batch = await take_batch(
            runtime.redis,
            ctx["worker_id"],
            classifier.batch_size,
            settings.moderation_reclaim_seconds,
        )
        if not batch:
            break
        verdicts = await classifier.classify([item.body for item in batch])
        async with session_scope(runtime.db) as session:
            decisions = await record_verdicts(session, settings, batch, verdicts)
            if classifier.last_call is not None:
                await bill_model_call(session, settings, batch, classifier.last_call)
        if settings.moderation_hold_seconds:
            await asyncio.sleep(settings.moderation_hold_seconds)
        # Acknowledged only once the flags are committed: a crash before this means a re-read, not a loss.
        await acknowledge(runtime.redis, batch)
        judged += len(batch)
        for decision in decisions:
            for user_id, frame in mute_frames(decision):
                await notify_user(runtime.redis, user_id, frame)
    return judged
