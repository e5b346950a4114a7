"""The action router on both databases: the weather proof, validation, consent, roles, limits,
cache, timeouts, the audit log and built-in actions."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from mathia_weather.fake import FakeOpenWeather
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions import router
from mathia.actions.models import ActionAudit, Task
from mathia.connectors import manager
from mathia.connectors.services import ConnectorRuntime, configure
from mathia.connectors.testing import serve
from tests.actions import sample_plugin
from tests.actions.conftest import RecordingDelivery, Team

KEY = "ow-key-0123456789abcdef"


@pytest.fixture(scope="module")
def openweather() -> Iterator[tuple[FakeOpenWeather, str]]:
    fake = FakeOpenWeather(api_key=KEY, quota=10_000)
    with serve(fake.app()) as url:
        yield fake, url


async def enable_weather(connectors: ConnectorRuntime, session: AsyncSession, team: Team, url: str) -> None:
    await configure(
        connectors,
        session,
        team.workspace,
        "weather",
        enabled=True,
        credentials={"api_key": KEY},
        settings={"base_url": url},
    )


def offline(connectors: ConnectorRuntime, text: str) -> router.ToolCall:
    calls = [call for rule in router.offline_rules(connectors) if (call := rule(text)) is not None]
    assert calls, f"no rule matched {text!r}"
    return calls[0]


async def audits(session: AsyncSession, team: Team) -> list[ActionAudit]:
    return list(
        await session.scalars(
            select(ActionAudit)
            .where(ActionAudit.tenant_id == team.workspace)
            .order_by(ActionAudit.created_at)
        )
    )


async def test_whats_the_weather_in_nairobi(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, openweather: tuple[FakeOpenWeather, str]
) -> None:
    fake, url = openweather
    await enable_weather(connectors, session, team, url)
    call = offline(connectors, "@mathia what's the weather in Nairobi?")
    assert (call.name, call.arguments) == ("weather__current", {"city": "Nairobi"})
    before = len(fake.calls)
    for _ in range(2):
        outcome = await router.run_action(
            connectors,
            session,
            tenant_id=team.workspace,
            user_id=team.member,
            room_id=None,
            tool=call.name,
            arguments=call.arguments,
        )
        assert outcome.status == "ok"
        assert outcome.text.startswith("Nairobi, KE: 22°C, scattered clouds")
    assert len(fake.calls) == before + 1  # the second answer came from the cache
    rows = await audits(session, team)
    assert [(r.action, r.outcome, r.params) for r in rows] == [
        ("current", "ok", {"city": "Nairobi", "units": None}),
        ("current", "cached", {"city": "Nairobi", "units": None}),
    ]
    assert rows[0].user_id == team.member and rows[0].duration_ms >= 0


async def test_plain_errors_from_the_provider(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, openweather: tuple[FakeOpenWeather, str]
) -> None:
    await enable_weather(connectors, session, team, openweather[1])
    outcome = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool="weather__current",
        arguments={"city": "Atlantis"},
    )
    assert (outcome.status, outcome.text) == ("error", "OpenWeather does not know a city called 'Atlantis'")


async def test_tools_for_follows_consent_and_role(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, openweather: tuple[FakeOpenWeather, str]
) -> None:
    names = {t.name for t in await router.tools_for(connectors, session, team.workspace, team.member)}
    assert names == {"builtin__notify", "builtin__create_task"}
    await enable_weather(connectors, session, team, openweather[1])
    tools = {t.name: t for t in await router.tools_for(connectors, session, team.workspace, team.member)}
    assert {"weather__current", "weather__forecast"} <= set(tools)
    schema = tools["weather__current"].input_schema
    assert schema["type"] == "object" and schema["required"] == ["city"]
    assert await router.tools_for(connectors, session, team.workspace, team.guest) == []


@pytest.mark.parametrize(
    ("user", "tool", "arguments", "status", "text"),
    [
        ("member", "weather__current", {}, "invalid", "Object missing required field `city`"),
        ("member", "weather__current", {"city": "Nairobi", "units": "kelvin"}, "invalid", "at `$.units`"),
        ("member", "weather__current", {"city": "Nairobi", "extra": 1}, "invalid", "unknown field `extra`"),
        ("member", "nothing__here", {}, "invalid", "there is no action called 'nothing__here'"),
        ("member", "payments__top_up", {"amount": 5}, "not_enabled", "payments connector is not enabled"),
        (
            "guest",
            "builtin__notify",
            {"to": "everyone", "message": "hi"},
            "forbidden",
            "needs the member role",
        ),
        ("stranger", "builtin__notify", {"to": "everyone", "message": "hi"}, "forbidden", "needs the member"),
    ],
)
async def test_refusals_change_nothing(
    connectors: ConnectorRuntime,
    session: AsyncSession,
    team: Team,
    openweather: tuple[FakeOpenWeather, str],
    user: str,
    tool: str,
    arguments: dict[str, object],
    status: str,
    text: str,
) -> None:
    import uuid

    await enable_weather(connectors, session, team, openweather[1])
    user_id = getattr(team, user) if user != "stranger" else uuid.uuid4()
    outcome = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=user_id,
        room_id=None,
        tool=tool,
        arguments=arguments,
    )
    assert outcome.status == status
    assert text in outcome.text
    assert await audits(session, team) == []
    assert connectors.delivery.frames == []  # type: ignore[attr-defined]


async def test_rate_limit_per_workspace_and_connector(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team
) -> None:
    args = {"to": "Owner", "message": "ping"}
    statuses = [
        (
            await router.run_action(
                connectors,
                session,
                tenant_id=team.workspace,
                user_id=team.member,
                room_id=None,
                tool="builtin__notify",
                arguments=args,
            )
        ).status
        for _ in range(6)
    ]
    assert statuses == ["ok"] * 5 + ["rate_limited"]
    assert [r.outcome for r in await audits(session, team)][-1] == "rate_limited"


async def test_builtin_notify_and_create_task(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team
) -> None:
    delivery: RecordingDelivery = connectors.delivery  # type: ignore[assignment]
    call = offline(connectors, "notify admins that the build is broken")
    outcome = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool=call.name,
        arguments=call.arguments,
    )
    assert outcome.status == "ok"
    assert {u for u, _ in delivery.frames} == {team.owner, team.admin}
    assert delivery.frames[0][1]["text"] == "the build is broken"
    assert delivery.frames[0][1]["type"] == "notification"
    call = offline(connectors, "task for Member: file the quarterly report")
    outcome = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.owner,
        room_id=None,
        tool=call.name,
        arguments=call.arguments,
    )
    assert outcome.status == "ok", outcome.text
    task = await session.scalar(select(Task).where(Task.tenant_id == team.workspace))
    assert task is not None and (task.title, task.assignee_id) == ("file the quarterly report", team.member)
    missing = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.owner,
        room_id=None,
        tool="builtin__create_task",
        arguments={"title": "x", "assignee": "Nobody"},
    )
    assert (missing.status, missing.text) == ("error", "no member of this workspace is called 'Nobody'")


async def test_timeouts_crashes_and_secrets(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team, caplog: pytest.LogCaptureFixture
) -> None:
    from mathia.actions import builtin

    connectors.registry = manager.load(builtins=[("builtin", builtin), ("sample", sample_plugin)], eps=[])
    secret = "sk-live-do-not-leak-42"
    await configure(
        connectors, session, team.workspace, "sample", enabled=True, credentials={"token": secret}
    )
    caplog.set_level(logging.INFO)
    slow = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool="sample__slow",
        arguments={},
    )
    assert (slow.status, slow.text) == ("error", "sample did not answer within 0.2 s")
    crash = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool="sample__crash",
        arguments={"note": f"use {secret}"},
    )
    assert (crash.status, crash.text) == ("error", "the sample connector failed; the error was logged")
    echo = await router.run_action(
        connectors,
        session,
        tenant_id=team.workspace,
        user_id=team.member,
        room_id=None,
        tool="sample__echo",
        arguments={"password": "hunter2", "note": "n"},
    )
    assert echo.status == "ok" and secret not in echo.text and "***" in echo.text
    rows = await audits(session, team)
    assert [r.outcome for r in rows] == ["error", "error", "ok"]
    assert rows[1].params == {"note": "use ***", "password": "***"}
    assert rows[2].params == {"password": "***", "note": "n"}
    stored = " ".join(f"{r.params} {r.detail}" for r in rows)
    assert secret not in stored and "hunter2" not in stored
    assert "sample.crash failed" in caplog.text
    assert secret not in caplog.text
