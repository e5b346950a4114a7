"""The approvals sweep: a request nobody decided on expires on time, and its requester and
the workspace's approvers hear of it even if nobody opens the approvals list."""

from __future__ import annotations

from mathia.actions.router import expire_approvals
from mathia.db import session_scope
from mathia.jobs import JobContext, cron, every_seconds


@cron(lambda settings: every_seconds(settings.approval_sweep_interval), timeout=60)
async def sweep_approvals(ctx: JobContext) -> int:
    runtime = ctx["runtime"]
    async with session_scope(runtime.db) as session:
        return await expire_approvals(session, runtime.redis)
