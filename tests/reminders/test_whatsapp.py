"""Reminders sent on WhatsApp by a real worker, through the installed WhatsApp connector
talking to a fake Cloud API on loopback (PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from mathia_whatsapp.fake import FakeWhatsApp
from redis.asyncio import Redis

from mathia.app import create_app
from mathia.cli import WEBSOCKET_OPTIONS
from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.connectors.testing import serve as serve_provider
from tests.client import Member, sign_up
from tests.reminders.world import eventually, running_worker

# The app and the worker share this Redis database (the connector's 24 h window lives there);
# no other test uses it, so the worker takes only this module's jobs.
REDIS_DB = 13
NUMBER = "254711000222"


@pytest.fixture(scope="module")
def settings(app_settings: Settings) -> Settings:
    redis_url = f"{str(app_settings.redis_url).rsplit('/', 1)[0]}/{REDIS_DB}"
    return msgspec.structs.replace(app_settings, redis_url=redis_url, reminder_sweep_interval=5)


@pytest.fixture(scope="module")
def url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings), **WEBSOCKET_OPTIONS) as url:
        yield url


@pytest.fixture
async def fake(settings: Settings) -> AsyncIterator[tuple[FakeWhatsApp, str]]:
    client = Redis.from_url(str(settings.redis_url))
    await client.flushdb()
    await client.aclose()
    provider = FakeWhatsApp()
    with serve_provider(provider.app()) as provider_url:
        yield provider, provider_url


async def member_in_workspace(url: str, number: str = "") -> tuple[Member, str, str]:
    ada = await sign_up(url, "Ada")
    if number:
        response = await ada.http.put("/api/me/profile", json={"whatsapp": number})
        assert response.status_code == 200, response.text
    workspace = await ada.workspace()
    return ada, workspace, await ada.room(workspace)


async def enable_whatsapp(ada: Member, workspace: str, fake: FakeWhatsApp, provider_url: str) -> None:
    response = await ada.http.put(
        f"/api/workspaces/{workspace}/connectors/whatsapp",
        json={
            "enabled": True,
            "settings": {"phone_number_id": fake.phone_number_id, "api_base": f"{provider_url}/v21.0"},
            "credentials": {
                "access_token": fake.access_token,
                "app_secret": fake.app_secret,
                "verify_token": "v",
            },
        },
    )
    assert response.status_code == 200, response.text


async def user_writes_on_whatsapp(url: str, workspace: str, fake: FakeWhatsApp) -> None:
    """The signed inbound webhook that opens the 24 h window for free text to NUMBER."""
    body = fake.inbound(NUMBER, "hi Mathia")
    async with httpx.AsyncClient(base_url=url) as provider:
        response = await provider.post(
            f"/hooks/whatsapp/{workspace}/webhook",
            content=body,
            headers={"X-Hub-Signature-256": fake.sign(body)},
        )
    assert response.status_code == 200, response.text


async def remind_in_a_second(ada: Member, room: str, message: str) -> str:
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    response = await ada.post(
        "/api/reminders",
        {"message": message, "due_at": due.isoformat(), "room_id": room, "channels": ["whatsapp"]},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def kind(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "notification" and frame.get("kind") == name


async def test_a_reminder_reaches_the_users_own_number_once(
    url: str, settings: Settings, fake: tuple[FakeWhatsApp, str]
) -> None:
    provider, provider_url = fake
    ada, workspace, room = await member_in_workspace(url, "+" + NUMBER)
    await enable_whatsapp(ada, workspace, provider, provider_url)
    await user_writes_on_whatsapp(url, workspace, provider)
    async with ada.socket(url) as socket, running_worker(settings):
        await socket.subscribe(room)
        reminder = await remind_in_a_second(ada, room, "stretch")
        note = await socket.expect(kind("reminder"), timeout=15)

        async def sent() -> bool:
            return bool(provider.sent)

        await eventually(sent)
        await asyncio.sleep(6)  # past a sweep: nothing delivers it again
    assert note["reminder_id"] == reminder
    assert [(m["to"], m["type"], m["text"]["body"]) for m in provider.sent] == [
        (NUMBER, "text", "Reminder: stretch")
    ]
    assert not any(f.get("kind") == "reminder.whatsapp_failed" for f in socket.frames)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no number", "your profile has no WhatsApp number"),
        ("not enabled", "the WhatsApp connector is not enabled in this reminder's workspace"),
        ("window closed", "has not written in the last 24 hours"),
    ],
)
async def test_an_unsendable_reminder_tells_the_user_why(
    url: str, settings: Settings, fake: tuple[FakeWhatsApp, str], case: str, reason: str
) -> None:
    provider, provider_url = fake
    ada, workspace, room = await member_in_workspace(url, "" if case == "no number" else NUMBER)
    if case != "not enabled":
        await enable_whatsapp(ada, workspace, provider, provider_url)
    async with ada.socket(url) as socket, running_worker(settings):
        await socket.subscribe(room)
        reminder = await remind_in_a_second(ada, room, "stretch")
        failed = await socket.expect(kind("reminder.whatsapp_failed"), timeout=15)
    assert failed["reminder_id"] == reminder and reason in failed["detail"]
    assert provider.sent == []
    # The reminder itself was still delivered, in the room and to the user's sockets.
    assert any(f.get("kind") == "reminder" and f["reminder_id"] == reminder for f in socket.frames)
    [stored] = (await ada.get("/api/reminders")).json()
    assert stored["status"] == "delivered"


@pytest.mark.parametrize("number", ["12345", "+2547110002221234", "0711 000 222", "tel:254711000222"])
async def test_the_profile_number_is_validated(url: str, number: str) -> None:
    ada, _, _ = await member_in_workspace(url, NUMBER)
    response = await ada.http.put("/api/me/profile", json={"whatsapp": number})
    assert response.status_code == 400, response.text
    [problem] = response.json()["extra"]
    assert problem["key"] == "whatsapp" and "matching regex" in problem["message"]
    assert (await ada.get("/api/me/profile")).json()["whatsapp"] == NUMBER
    cleared = await ada.http.put("/api/me/profile", json={"whatsapp": ""})
    assert cleared.status_code == 200 and cleared.json()["whatsapp"] == ""
