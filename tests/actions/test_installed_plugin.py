"""A plugin installed from its own directory (not part of the core) is discovered and its
action runs through the router; one that raises on import leaves the server serving."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions import router
from mathia.config import Settings
from mathia.connectors.services import build_runtime, configure
from tests import SECRET_KEY
from tests.actions.conftest import RecordingDelivery, Team
from tests.connectors import installing


async def test_separately_installed_plugin_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis: Redis, session: AsyncSession, team: Team
) -> None:
    installing.install(monkeypatch, tmp_path, "mathia_hello", "hello", installing.HELLO)
    installing.install(monkeypatch, tmp_path / "broken", "mathia_broken", "broken", installing.BROKEN_IMPORT)
    settings = Settings.from_env({}, secret_key=SECRET_KEY)
    async with httpx.AsyncClient() as http:
        runtime = build_runtime(settings, redis, http, RecordingDelivery())
        assert runtime.registry.plugins["hello"].version == "0.3.0"
        assert "broken" in runtime.registry.failures
        refused = await router.run_action(
            runtime,
            session,
            tenant_id=team.workspace,
            user_id=team.member,
            room_id=None,
            tool="hello__greet",
            arguments={"name": "Ada"},
        )
        assert refused.status == "not_enabled"
        await configure(runtime, session, team.workspace, "hello", enabled=True)
        outcome = await router.run_action(
            runtime,
            session,
            tenant_id=team.workspace,
            user_id=team.member,
            room_id=None,
            tool="hello__greet",
            arguments={"name": "Ada"},
        )
    assert (outcome.status, outcome.text) == ("ok", f"Hello, Ada, from workspace {team.workspace}")


async def test_plugins_setting_restricts_loading(redis: Redis) -> None:
    settings = Settings.from_env({"MATHIA_PLUGINS": "weather"}, secret_key=SECRET_KEY)
    async with httpx.AsyncClient() as http:
        runtime = build_runtime(settings, redis, http, RecordingDelivery())
    assert set(runtime.registry.plugins) == {"builtin", "weather"}


async def test_server_starts_beside_a_plugin_that_raises_on_import(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app_settings: Settings
) -> None:
    from mathia.app import create_app

    installing.install(monkeypatch, tmp_path, "mathia_broken", "broken", installing.BROKEN_IMPORT)
    async with AsyncTestClient(create_app(app_settings)) as client:
        assert (await client.get("/health/live")).status_code == 200
        signed = await client.post(
            "/api/auth/register",
            json={
                "email": f"p-{secrets.token_hex(4)}@example.com",
                "password": "correct horse battery",
                "display_name": "P",
            },
        )
        token = signed.json()["access_token"]
        plugins = await client.get("/api/plugins", headers={"Authorization": f"Bearer {token}"})
    assert plugins.status_code == 200
    names = {p["name"] for p in plugins.json()}
    assert "broken" not in names and {"weather", "payments"} <= names


LEAKY = """
from dataclasses import dataclass

from mathia.connectors import Field, Route, hookimpl


async def boom(request):
    raise RuntimeError(f"upstream refused token {request.credentials['token']}")


@dataclass
class Leaky:
    name: str = "leaky"
    version: str = "1"
    description: str = "a careless webhook"
    actions: tuple = ()
    credentials: tuple = (Field("token", "a secret"),)
    settings: tuple = ()
    permissions: tuple = ()


@hookimpl
def mathia_connectors():
    return [Leaky()]


@hookimpl
def mathia_routes():
    return [Route("leaky", "/boom", boom)]
"""


async def test_a_failing_route_answers_500_without_leaking(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app_settings: Settings
) -> None:
    from mathia.app import create_app

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    # Our own handler: the app's logging configuration may route records away from pytest's.
    logger = logging.getLogger("mathia.connectors.controllers")
    logger.addHandler(handler)

    installing.install(monkeypatch, tmp_path, "mathia_leaky", "leaky", LEAKY)
    token = "leak-" + secrets.token_hex(8)
    async with AsyncTestClient(create_app(app_settings)) as client:
        signed = await client.post(
            "/api/auth/register",
            json={
                "email": f"l-{secrets.token_hex(4)}@example.com",
                "password": "correct horse battery",
                "display_name": "L",
            },
        )
        client.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
        workspace = (await client.post("/api/workspaces", json={"name": "W"})).json()["id"]
        enabled = await client.put(
            f"/api/workspaces/{workspace}/connectors/leaky",
            json={"enabled": True, "credentials": {"token": token}},
        )
        assert enabled.status_code == 200, enabled.text
        answer = await client.post(f"/hooks/leaky/{workspace}/boom", content=b"{}")
    assert (answer.status_code, answer.text) == (500, "the connector failed")
    logger.removeHandler(handler)
    logged = [r.getMessage() for r in records]
    assert logged == ["route leaky/boom of connector leaky failed: RuntimeError: upstream refused token ***"]
