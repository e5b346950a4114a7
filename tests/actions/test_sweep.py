"""The approvals sweep on a real worker: a request nobody decided on expires on time, and its
requester and the workspace's owner hear of it, though nobody opened the approvals list."""

from __future__ import annotations

import asyncio
import datetime as dt

from redis.asyncio import Redis

from mathia.actions.models import Approval, ApprovalStatus
from mathia.db import utcnow
from mathia.rooms.realtime import user_channel
from tests.reminders.world import eventually, frames, make_world, running_worker, session_on, worker_settings


async def test_an_undecided_approval_expires_and_both_sides_are_told(
    postgres_url: str, redis_url: str, redis: Redis
) -> None:
    settings = worker_settings(postgres_url, redis_url, approval_sweep_interval=1)
    async with session_on(settings) as pg:
        world = await make_world(pg)
        requester = world.members[0]

        def approval(expires_in: dt.timedelta) -> Approval:
            return Approval(
                tenant_id=world.workspace.id,
                user_id=requester.id,
                connector="payments",
                action="top_up",
                params={"credits": 500},
                summary="Top up 500 credits",
                expires_at=utcnow() + expires_in,
            )

        overdue, current = approval(dt.timedelta(seconds=-5)), approval(dt.timedelta(hours=1))
        pg.add_all([overdue, current])
        await pg.commit()
        other = world.members[1]
        async with (
            frames(redis, user_channel(requester.id)) as to_requester,
            frames(redis, user_channel(world.owner.id)) as to_owner,
            frames(redis, user_channel(other.id)) as to_other,
            running_worker(settings),
        ):

            async def expired_and_told() -> bool:
                await pg.refresh(overdue)
                return overdue.status == ApprovalStatus.EXPIRED and bool(to_requester and to_owner)

            await eventually(expired_and_told)
            await asyncio.sleep(1.5)  # another sweep or two: nobody is told twice
        await pg.refresh(current)
    assert current.status == ApprovalStatus.PENDING
    # Told once each: the requester and the owner (the only approver); not the other member.
    expected = {
        "type": "notification",
        "kind": "approval",
        "workspace_id": str(world.workspace.id),
        "approval_id": str(overdue.id),
        "summary": "Top up 500 credits",
        "status": "expired",
    }
    assert (to_requester, to_owner, to_other) == ([expected], [expected], [])
