"""The connectors issue's proofs, from a chat message: `@mathia` asks, the offline
provider's rules pick the action, the plugin talks to its fake provider on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mathia_payments.fake import FakeIntaSend
from mathia_weather.fake import FakeOpenWeather

from mathia.app import create_app
from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.wallet.models import CREDIT_UNITS
from tests.client import Member, Socket, sign_up
from tests.connectors import installing


@pytest.fixture(scope="module")
def weather() -> Iterator[tuple[FakeOpenWeather, str]]:
    fake = FakeOpenWeather(api_key="ow-chat-key-123456")
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture(scope="module")
def intasend() -> Iterator[tuple[FakeIntaSend, str]]:
    fake = FakeIntaSend()
    with serve(fake.app()) as url:
        yield fake, url


async def ask(socket: Socket, room: str, question: str) -> str:
    await socket.send({"type": "message.send", "room_id": room, "body": question})
    return str((await socket.expect("ai.done", timeout=15))["message"]["body"])


async def enable(owner: Member, workspace: str, name: str, body: dict[str, object]) -> None:
    response = await owner.http.put(
        f"/api/workspaces/{workspace}/connectors/{name}", json={"enabled": True, **body}
    )
    assert response.status_code == 200, response.text


async def test_weather_in_nairobi(base_url: str, weather: tuple[FakeOpenWeather, str]) -> None:
    fake, url = weather
    ada = await sign_up(base_url)
    workspace = await ada.workspace()
    room = await ada.room(workspace)
    async with ada.socket(base_url) as socket:
        await socket.subscribe(room)
        before_enabling = await ask(socket, room, "@mathia what's the weather in Nairobi?")
        await enable(
            ada,
            workspace,
            "weather",
            {"credentials": {"api_key": fake.api_key}, "settings": {"base_url": url}},
        )
        answer = await ask(socket, room, "@mathia what's the weather in Nairobi?")
    assert "not enabled" in before_enabling
    assert answer.startswith("Nairobi, KE: 22°C")


async def test_top_up_500_credits_from_chat(base_url: str, intasend: tuple[FakeIntaSend, str]) -> None:
    fake, url = intasend
    owner, bob = await sign_up(base_url, "Olive"), await sign_up(base_url, "Bob")
    workspace = await owner.workspace()
    await owner.invite(workspace, bob, "member")
    room = await owner.room(workspace)
    assert (await bob.post(f"/api/rooms/{room}/join")).status_code == 200
    await enable(
        owner,
        workspace,
        "payments",
        {
            "settings": {"intasend_base_url": url},
            "credentials": {
                "intasend_secret_key": fake.secret_key,
                "intasend_public_key": fake.public_key,
                "intasend_challenge": fake.challenge,
            },
        },
    )
    start = (await owner.get(f"/api/workspaces/{workspace}/wallet")).json()["balance"]
    async with owner.socket(base_url) as admin_socket, bob.socket(base_url) as socket:
        await socket.subscribe(room)
        answer = await ask(socket, room, "@mathia top up 500 credits from 254712345678")
        notice = await admin_socket.expect(
            lambda f: f["type"] == "notification" and f.get("kind") == "approval"
        )
    assert answer.startswith("waiting for an owner or admin to approve")
    [pending] = (await owner.get(f"/api/workspaces/{workspace}/approvals")).json()
    assert pending["params"]["amount"] == 500
    assert (notice["approval_id"], notice["status"]) == (pending["id"], "pending")
    approved = await owner.post(f"/api/approvals/{pending['id']}/approve")
    assert approved.status_code == 200, approved.text
    invoice = approved.json()["outcome"]["data"]["payment_id"]
    async with httpx.AsyncClient(base_url=base_url) as provider:
        for _ in range(3):  # the provider retries its webhook; it credits once
            hook = await provider.post(
                f"/hooks/payments/{workspace}/intasend", content=json.dumps(fake.settle(invoice))
            )
            assert hook.status_code == 200
    balance = (await owner.get(f"/api/workspaces/{workspace}/wallet")).json()["balance"]
    assert balance == start + 500 * CREDIT_UNITS


async def test_a_separately_installed_plugin_answers_a_chat_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, app_settings: Settings
) -> None:
    source = installing.HELLO.replace(
        'Action("greet", "Greet someone", Greet, greet)',
        'Action("greet", "Greet someone", Greet, greet, phrases=(r"greet (?P<name>\\w+)",))',
    )
    installing.install(monkeypatch, tmp_path, "mathia_hello", "hello", source)
    with serve(create_app(app_settings)) as url:
        ada = await sign_up(url)
        workspace = await ada.workspace()
        room = await ada.room(workspace)
        await enable(ada, workspace, "hello", {})
        async with ada.socket(url) as socket:
            await socket.subscribe(room)
            answer = await ask(socket, room, "@mathia greet Grace")
    assert answer == f"Hello, Grace, from workspace {workspace}"
