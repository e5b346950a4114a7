"""Usage records and the usage report (both databases), the HTTP endpoint, and AI rate limits (Redis)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.limits import ai_rate_limit, enforce_ai_rate_limit
from mathia.assistant.models import AIUsage
from mathia.assistant.providers import Finish
from mathia.assistant.services import record_usage, usage_report
from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import database_config, session_scope
from mathia.errors import InvalidInput, RateLimited
from mathia.tenants.models import Workspace
from tests import SECRET_KEY
from tests.client import sign_up

DAY1 = dt.date(2026, 3, 1)
DAY2 = dt.date(2026, 3, 2)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


def finish(input_tokens: int, output_tokens: int, provider: str = "anthropic") -> Finish:
    return Finish(provider, "claude-test", input_tokens, output_tokens, "end_turn", latency_ms=321)


async def user(session: AsyncSession, name: str) -> User:
    account = User(email=f"{name}-{uuid.uuid4().hex[:8]}@example.com", display_name=name, password_hash="x")
    session.add(account)
    await session.flush()
    return account


async def workspace(session: AsyncSession) -> Workspace:
    space = Workspace(name="Acme")
    session.add(space)
    await session.flush()
    return space


async def usage_at(
    session: AsyncSession, when: dt.datetime, space: Workspace, account: User | None, tokens: tuple[int, int]
) -> AIUsage:
    row = await record_usage(
        session, finish(*tokens), workspace_id=space.id, user_id=account.id if account else None
    )
    row.created_at = when
    await session.flush()
    return row


async def test_record_usage_keeps_what_the_call_reported(session: AsyncSession) -> None:
    space, ada = await workspace(session), await user(session, "Ada")

    row = await record_usage(session, finish(120, 45, "openai"), workspace_id=space.id, user_id=ada.id)

    stored = await session.get(AIUsage, row.id)
    assert stored is not None
    assert (stored.tenant_id, stored.user_id, stored.room_id, stored.message_id) == (
        space.id,
        ada.id,
        None,
        None,
    )
    assert (stored.provider, stored.model) == ("openai", "claude-test")
    assert (stored.input_tokens, stored.output_tokens, stored.latency_ms) == (120, 45, 321)
    await session.rollback()


async def test_report_groups_by_utc_day_and_user(session: AsyncSession) -> None:
    space, other_space = await workspace(session), await workspace(session)
    ada, bob = await user(session, "Ada"), await user(session, "Bob")
    await usage_at(session, at(DAY1, 9), space, ada, (100, 10))
    await usage_at(session, at(DAY1, 23, 30), space, ada, (50, 5))  # late on day 1 in UTC
    await usage_at(session, at(DAY2, 0, 30), space, ada, (7, 1))  # early on day 2 in UTC
    await usage_at(session, at(DAY1, 12), space, bob, (30, 3))
    await usage_at(session, at(DAY1, 12), other_space, ada, (999, 999))  # another workspace: never counted
    if session.get_bind().dialect.name == "postgresql":
        # A session far from UTC must not move calls across midnight.
        await session.execute(text("SET TIME ZONE 'Pacific/Kiritimati'"))

    report = await usage_report(session, space.id)

    assert [(r.day, r.display_name, r.calls, r.input_tokens, r.output_tokens) for r in report.rows] == [
        (DAY1, "Ada", 2, 150, 15),
        (DAY1, "Bob", 1, 30, 3),
        (DAY2, "Ada", 1, 7, 1),
    ]
    assert report.rows[0].user_id == ada.id
    assert (report.totals.calls, report.totals.input_tokens, report.totals.output_tokens) == (4, 187, 19)

    only_day2 = await usage_report(session, space.id, start=DAY2, end=DAY2)
    assert [(r.day, r.calls) for r in only_day2.rows] == [(DAY2, 1)]
    until_day1 = await usage_report(session, space.id, end=DAY1)
    assert until_day1.totals.calls == 3
    with pytest.raises(InvalidInput, match="from: must not be after to"):
        await usage_report(session, space.id, start=DAY2, end=DAY1)
    await session.rollback()


async def test_usage_endpoint_is_for_admins_of_the_workspace(base_url: str, app_settings: Settings) -> None:
    owner, bob, mallory = (
        await sign_up(base_url, "Owner"),
        await sign_up(base_url, "Bob"),
        await sign_up(base_url),
    )
    space = await owner.workspace()
    await owner.invite(space, bob, "member")
    config = database_config(app_settings)
    async with session_scope(config) as session:
        await record_usage(
            session, finish(40, 4), workspace_id=uuid.UUID(space), user_id=uuid.UUID(bob.user_id)
        )
    await config.get_engine().dispose()
    today = dt.datetime.now(dt.UTC).date().isoformat()

    response = await owner.get(f"/api/workspaces/{space}/usage")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [
        {
            "day": today,
            "user_id": bob.user_id,
            "display_name": "Bob",
            "calls": 1,
            "input_tokens": 40,
            "output_tokens": 4,
        }
    ]
    assert body["totals"] == {"calls": 1, "input_tokens": 40, "output_tokens": 4}
    ranged = await owner.get(f"/api/workspaces/{space}/usage", **{"from": "2020-01-01", "to": "2020-01-31"})
    assert ranged.json()["rows"] == []
    assert (ranged.json()["from"], ranged.json()["to"]) == ("2020-01-01", "2020-01-31")
    # Members may not see it; outsiders cannot tell the workspace exists.
    assert (await bob.get(f"/api/workspaces/{space}/usage")).status_code == 403
    assert (await mallory.get(f"/api/workspaces/{space}/usage")).status_code == 404
    bad = await owner.get(f"/api/workspaces/{space}/usage", **{"from": "yesterday"})
    assert bad.status_code == 400
    assert "from" in bad.text
    backwards = await owner.get(
        f"/api/workspaces/{space}/usage", **{"from": "2026-02-02", "to": "2026-02-01"}
    )
    assert backwards.status_code == 400
    assert "from: must not be after to" in backwards.json()["detail"]


async def test_ai_rate_limits_per_user_and_per_workspace(redis: Redis) -> None:
    settings = Settings.from_env(
        {}, secret_key=SECRET_KEY, ai_user_rate_limit=3, ai_workspace_rate_limit=5, ai_rate_window=60
    )
    space, ada, bob, cy = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    async def ask(person: uuid.UUID) -> float | None:
        return await ai_rate_limit(redis, settings, workspace_id=space, user_id=person)

    assert [await ask(ada) for _ in range(3)] == [None, None, None]
    wait = await ask(ada)
    assert wait is not None
    assert 0 < wait <= 60
    # Ada's refusal did not use the workspace's budget: Bob gets the two calls that are left.
    assert [await ask(bob), await ask(bob)] == [None, None]
    refused = await ask(cy)
    assert refused is not None
    assert 0 < refused <= 60
    # Refused by the full workspace, Cy's own window was not charged.
    assert await redis.get(f"mathia:rl:ai:user:{cy}") is None
    # Another workspace has its own budget.
    assert await ai_rate_limit(redis, settings, workspace_id=uuid.uuid4(), user_id=bob) is None


async def test_enforcing_the_limit_raises_a_rate_limited_error(redis: Redis) -> None:
    settings = Settings.from_env({}, secret_key=SECRET_KEY, ai_user_rate_limit=1, ai_rate_window=30)
    space, ada = uuid.uuid4(), uuid.uuid4()

    await enforce_ai_rate_limit(redis, settings, workspace_id=space, user_id=ada)
    with pytest.raises(RateLimited, match="too many assistant requests") as caught:
        await enforce_ai_rate_limit(redis, settings, workspace_id=space, user_id=ada)

    assert caught.value.status_code == 429
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 30
