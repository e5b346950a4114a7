"""The administration and approval API over HTTP, against the served app (PostgreSQL, Redis),
with the installed weather and payments plugins talking to fake providers on loopback."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from mathia_payments.fake import FakeIntaSend
from mathia_weather.fake import FakeOpenWeather

from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.wallet.models import CREDIT_UNITS
from tests.client import Member, sign_up


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeOpenWeather, str, FakeIntaSend, str]]:
    weather, intasend = FakeOpenWeather(api_key="ow-http-key-123456"), FakeIntaSend()
    with serve(weather.app()) as weather_url, serve(intasend.app()) as intasend_url:
        yield weather, weather_url, intasend, intasend_url


async def team(base_url: str) -> tuple[Member, Member, str]:
    owner, bob = await sign_up(base_url, "Olive"), await sign_up(base_url, "Bob")
    workspace = await owner.workspace()
    await owner.invite(workspace, bob, "member")
    return owner, bob, workspace


async def test_plugins_are_listed(base_url: str) -> None:
    owner = await sign_up(base_url)
    plugins = {p["name"]: p for p in (await owner.get("/api/plugins")).json()}
    assert {"builtin", "weather", "payments"} <= set(plugins)
    weather = plugins["weather"]["connectors"][0]
    assert plugins["weather"]["version"] == "0.1.0"
    assert [a["name"] for a in weather["actions"]] == ["current", "forecast"]
    assert weather["actions"][0]["parameters"]["required"] == ["city"]
    assert (await httpx.AsyncClient(base_url=base_url).get("/api/plugins")).status_code == 401


async def test_enabling_a_connector(
    base_url: str, providers: tuple[FakeOpenWeather, str, FakeIntaSend, str]
) -> None:
    _, weather_url, _, _ = providers
    owner, bob, workspace = await team(base_url)
    path = f"/api/workspaces/{workspace}/connectors/weather"
    assert (await bob.http.put(path, json={"enabled": True})).status_code == 403
    missing = await owner.http.put(path, json={"enabled": True})
    assert (missing.status_code, missing.json()["detail"]) == (400, "cannot enable weather: missing api_key")
    unknown = await owner.http.put(path, json={"credentials": {"apikey": "x"}})
    assert unknown.status_code == 400 and "unknown field apikey" in unknown.json()["detail"]
    assert (await owner.http.put(path, json={"enabled": "yes"})).status_code == 400
    listed = {c["name"]: c for c in (await owner.get(f"/api/workspaces/{workspace}/connectors")).json()}
    assert listed["weather"]["enabled"] is False and listed["builtin"]["enabled"] is True

    done = await owner.http.put(
        path,
        json={
            "enabled": True,
            "credentials": {"api_key": "ow-http-key-123456"},
            "settings": {"base_url": weather_url},
        },
    )
    assert done.status_code == 200, done.text
    assert done.json()["credentials_set"] == ["api_key"] and done.json()["enabled"] is True
    listing = await bob.get(f"/api/workspaces/{workspace}/connectors")
    assert "ow-http-key-123456" not in done.text + listing.text  # never shown back
    answer = await bob.post(
        f"/api/workspaces/{workspace}/actions/weather__current", {"arguments": {"city": "Nairobi"}}
    )
    assert answer.json()["status"] == "ok" and answer.json()["text"].startswith("Nairobi, KE: 22°C")
    audit = await owner.get(f"/api/workspaces/{workspace}/audit")
    assert [
        (r["connector"], r["action"], r["outcome"], r["params"]["city"], r["user_id"]) for r in audit.json()
    ] == [("weather", "current", "ok", "Nairobi", bob.user_id)]
    assert "ow-http-key-123456" not in audit.text
    assert (await bob.get(f"/api/workspaces/{workspace}/audit")).status_code == 403

    mallory = await sign_up(base_url, "Mallory")
    await mallory.workspace("Mallory Inc")
    assert (await mallory.http.put(path, json={"enabled": False})).status_code == 404
    assert (await mallory.get(f"/api/workspaces/{workspace}/connectors")).status_code == 404


async def test_top_up_500_credits_over_http(
    base_url: str, providers: tuple[FakeOpenWeather, str, FakeIntaSend, str]
) -> None:
    _, _, intasend, intasend_url = providers
    owner, bob, workspace = await team(base_url)
    enabled = await owner.http.put(
        f"/api/workspaces/{workspace}/connectors/payments",
        json={
            "enabled": True,
            "settings": {"intasend_base_url": intasend_url},
            "credentials": {
                "intasend_secret_key": intasend.secret_key,
                "intasend_public_key": intasend.public_key,
                "intasend_challenge": intasend.challenge,
            },
        },
    )
    assert enabled.status_code == 200, enabled.text
    start = (await owner.get(f"/api/workspaces/{workspace}/wallet")).json()["balance"]

    asked = await bob.post(
        f"/api/workspaces/{workspace}/actions/payments__top_up",
        {"arguments": {"amount": 500, "phone": "254712345678"}},
    )
    assert asked.json()["status"] == "pending_approval"
    approval_id = asked.json()["approval_id"]
    pending = (await owner.get(f"/api/workspaces/{workspace}/approvals")).json()
    assert [(a["id"], a["params"]["amount"]) for a in pending] == [(approval_id, 500)]
    assert (await bob.post(f"/api/approvals/{approval_id}/approve")).status_code == 403
    approved = await owner.post(f"/api/approvals/{approval_id}/approve")
    assert approved.status_code == 200, approved.text
    invoice_id = approved.json()["outcome"]["data"]["payment_id"]
    assert (await owner.post(f"/api/approvals/{approval_id}/reject")).status_code == 409

    hook = f"/hooks/payments/{workspace}/intasend"
    provider = httpx.AsyncClient(base_url=base_url)  # IntaSend calls without any login
    forged = {**intasend.settle(invoice_id), "challenge": "guess"}
    assert (await provider.post(hook, json=forged)).status_code == 401
    body = intasend.settle(invoice_id)
    for _ in range(3):  # IntaSend retries deliveries
        assert (await provider.post(hook, content=json.dumps(body))).status_code == 200
    balance = (await owner.get(f"/api/workspaces/{workspace}/wallet")).json()["balance"]
    assert balance == start + 500 * CREDIT_UNITS
    # The hook of a workspace that has not enabled payments does not exist.
    other = await owner.workspace("Other")
    assert (await provider.post(f"/hooks/payments/{other}/intasend", json=body)).status_code == 404


async def test_tasks_api(base_url: str) -> None:
    owner, bob, workspace = await team(base_url)
    created = await owner.post(
        f"/api/workspaces/{workspace}/tasks", {"title": "ship it", "assignee_id": bob.user_id}
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["status"], task["assignee_id"]) == ("open", bob.user_id)
    listed = (await bob.get(f"/api/workspaces/{workspace}/tasks", status="open")).json()
    assert [t["id"] for t in listed] == [task["id"]]
    closed = await bob.http.patch(f"/api/tasks/{task['id']}", json={"status": "done"})
    assert closed.json()["status"] == "done" and closed.json()["closed_at"]
    assert (await bob.http.patch(f"/api/tasks/{task['id']}", json={"status": "finished"})).status_code == 400
    mallory = await sign_up(base_url, "Mallory")
    await mallory.workspace()
    assert (await mallory.http.patch(f"/api/tasks/{task['id']}", json={"status": "open"})).status_code == 404
    stranger = await owner.post(
        f"/api/workspaces/{workspace}/tasks", {"title": "x", "assignee_id": mallory.user_id}
    )
    assert stranger.status_code == 400 and "assignee_id" in stranger.json()["detail"]


async def test_whatsapp_inbound_reaches_the_room_once(base_url: str) -> None:
    from mathia_whatsapp.fake import FakeWhatsApp

    fake = FakeWhatsApp()
    owner, _, workspace = await team(base_url)
    room = await owner.room(workspace, "customers")
    enabled = await owner.http.put(
        f"/api/workspaces/{workspace}/connectors/whatsapp",
        json={
            "enabled": True,
            "settings": {"phone_number_id": fake.phone_number_id, "room_id": room},
            "credentials": {
                "access_token": fake.access_token,
                "app_secret": fake.app_secret,
                "verify_token": "v",
            },
        },
    )
    assert enabled.status_code == 200, enabled.text
    provider = httpx.AsyncClient(base_url=base_url)
    hook = f"/hooks/whatsapp/{workspace}/webhook"
    handshake = await provider.get(
        hook, params={"hub.mode": "subscribe", "hub.verify_token": "v", "hub.challenge": "8812"}
    )
    assert (handshake.status_code, handshake.text) == (200, "8812")
    wrong = await provider.get(
        hook, params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}
    )
    assert wrong.status_code == 403
    body = fake.inbound("254711000111", "Is the shop open?")
    forged = await provider.post(
        hook, content=body, headers={"X-Hub-Signature-256": fake.sign(body, "guess")}
    )
    assert forged.status_code == 401
    for _ in range(2):
        answer = await provider.post(hook, content=body, headers={"X-Hub-Signature-256": fake.sign(body)})
        assert answer.status_code == 200
    messages = (await owner.get(f"/api/rooms/{room}/messages")).json()["items"]
    assert [m["body"] for m in messages] == ["WhatsApp from Wanjiru (+254711000111): Is the shop open?"]
    assert messages[0]["sender"]["kind"] == "system"


async def test_approvals_are_walled_per_workspace(
    base_url: str, providers: tuple[FakeOpenWeather, str, FakeIntaSend, str]
) -> None:
    _, _, intasend, intasend_url = providers
    owner, bob, workspace = await team(base_url)
    await owner.http.put(
        f"/api/workspaces/{workspace}/connectors/payments",
        json={
            "enabled": True,
            "settings": {"intasend_base_url": intasend_url, "default_phone": "254712345678"},
            "credentials": {
                "intasend_secret_key": intasend.secret_key,
                "intasend_public_key": intasend.public_key,
                "intasend_challenge": intasend.challenge,
            },
        },
    )
    approval_id = (
        await bob.post(
            f"/api/workspaces/{workspace}/actions/payments__top_up", {"arguments": {"amount": 100}}
        )
    ).json()["approval_id"]
    mallory = await sign_up(base_url, "Mallory")
    theirs = await mallory.workspace("Mallory Inc")
    assert (await mallory.post(f"/api/approvals/{approval_id}/approve")).status_code == 404
    assert (await mallory.get(f"/api/workspaces/{workspace}/approvals")).status_code == 404
    assert (await mallory.get(f"/api/workspaces/{theirs}/approvals")).json() == []
    # Bob, a member, sees his own request; the approval answer and listing carry no credential.
    mine = await bob.get(f"/api/workspaces/{workspace}/approvals")
    assert [a["id"] for a in mine.json()] == [approval_id]
    decided = await owner.post(f"/api/approvals/{approval_id}/reject")
    for secret in (intasend.secret_key, intasend.public_key, intasend.challenge):
        assert secret not in mine.text + decided.text
    assert decided.json()["approval"]["status"] == "rejected"


async def test_calendly_oauth_callback_through_the_hook(base_url: str) -> None:
    from urllib.parse import parse_qs, urlsplit

    from mathia_calendly.fake import FakeCalendly

    fake = FakeCalendly()
    owner, bob, workspace = await team(base_url)
    with serve(fake.app()) as url:
        enabled = await owner.http.put(
            f"/api/workspaces/{workspace}/connectors/calendly",
            json={
                "enabled": True,
                "credentials": {"client_secret": fake.client_secret},
                "settings": {
                    "client_id": fake.client_id,
                    "public_url": base_url,
                    "auth_base": url,
                    "api_base": url,
                },
            },
        )
        assert enabled.status_code == 200, enabled.text
        started = await bob.post(f"/api/workspaces/{workspace}/actions/calendly__connect", {})
        authorize = started.json()["data"]["authorize_url"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        assert query["redirect_uri"] == f"{base_url}/hooks/calendly/{workspace}/oauth/callback"
        code = fake.authorize(query["redirect_uri"], query["code_challenge"])
        browser = httpx.AsyncClient()  # Calendly redirects the member's browser: no bearer token
        answer = await browser.get(query["redirect_uri"], params={"code": code, "state": query["state"]})
        assert answer.status_code == 200, answer.text
        free = await bob.post(f"/api/workspaces/{workspace}/actions/calendly__free_times", {})
        assert free.json()["text"].startswith("Free for 30 Minute Meeting"), free.text
        # The tokens are Bob's: Olive has not connected her own calendar.
        olive = await owner.post(f"/api/workspaces/{workspace}/actions/calendly__free_times", {})
        assert olive.json()["status"] == "error" and "not connected" in olive.json()["text"]


async def test_a_flood_on_the_hooks_is_cut_off_before_any_lookup(app_settings: Settings) -> None:
    from mathia.app import create_app

    limited = msgspec.structs.replace(app_settings, hook_rate_limit=3)
    hook = f"/hooks/flood{secrets.token_hex(4)}/{uuid.uuid4()}/webhook"
    with serve(create_app(limited)) as url:
        async with httpx.AsyncClient(base_url=url) as stranger:
            answers = [await stranger.post(hook, content=b"{}") for _ in range(5)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429, 429]
    assert answers[-1].json()["detail"].startswith(f"too many requests to the {hook.split('/')[2]} hooks")
    assert int(answers[-1].headers["retry-after"]) >= 1
