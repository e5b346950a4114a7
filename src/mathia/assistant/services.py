"""Usage records: one row per model call, and the per-day, per-user report of a workspace."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.models import AIUsage
from mathia.assistant.providers import Finish
from mathia.assistant.schemas import UsageReport, UsageRow, UsageTotals
from mathia.auth.models import User
from mathia.errors import InvalidInput


async def record_usage(
    session: AsyncSession,
    finish: Finish,
    *,
    workspace_id: UUID,
    user_id: UUID | None,
    room_id: UUID | None = None,
    message_id: UUID | None = None,
) -> AIUsage:
    """Add the usage row of one model call (flushed, committed with the caller's transaction)."""
    usage = AIUsage(
        tenant_id=workspace_id,
        user_id=user_id,
        room_id=room_id,
        message_id=message_id,
        provider=finish.provider,
        model=finish.model,
        input_tokens=finish.input_tokens,
        output_tokens=finish.output_tokens,
        latency_ms=finish.latency_ms,
    )
    session.add(usage)
    await session.flush()
    return usage


def _utc_day(session: AsyncSession) -> Any:
    # PostgreSQL would cast in the session's time zone; SQLite stores UTC text already.
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", AIUsage.created_at), Date)
    return func.date(AIUsage.created_at)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def usage_report(
    session: AsyncSession, workspace_id: UUID, *, start: dt.date | None = None, end: dt.date | None = None
) -> UsageReport:
    """Calls and tokens per UTC day and user, between `start` and `end` inclusive (either may be open).

    The caller has checked that the user may see this workspace's usage.
    """
    if start is not None and end is not None and start > end:
        raise InvalidInput("from: must not be after to", field="from")
    day = _utc_day(session).label("day")
    query = (
        select(
            day,
            AIUsage.user_id,
            User.display_name,
            func.count(AIUsage.id),
            func.sum(AIUsage.input_tokens),
            func.sum(AIUsage.output_tokens),
        )
        .outerjoin(User, User.id == AIUsage.user_id)
        .where(AIUsage.tenant_id == workspace_id)
        .group_by(day, AIUsage.user_id, User.display_name)
        .order_by(day, User.display_name, AIUsage.user_id)
    )
    if start is not None:
        query = query.where(AIUsage.created_at >= _midnight(start))
    if end is not None:
        query = query.where(AIUsage.created_at < _midnight(end + dt.timedelta(days=1)))
    rows = [
        UsageRow(
            day=value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)),
            user_id=user_id,
            display_name=display_name,
            calls=int(calls),
            input_tokens=int(input_tokens or 0),
            output_tokens=int(output_tokens or 0),
        )
        for value, user_id, display_name, calls, input_tokens, output_tokens in await session.execute(query)
    ]
    totals = UsageTotals(
        calls=sum(row.calls for row in rows),
        input_tokens=sum(row.input_tokens for row in rows),
        output_tokens=sum(row.output_tokens for row in rows),
    )
    return UsageReport(start=start, end=end, rows=rows, totals=totals)
