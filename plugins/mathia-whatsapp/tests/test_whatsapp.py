from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from mathia_whatsapp import plugin
from mathia_whatsapp.fake import FakeWhatsApp

from mathia.connectors import ActionError, Member, Role
from mathia.connectors.testing import (
    FakeWorkspace,
    MemoryCache,
    call,
    load_plugin,
    make_context,
    make_hook_request,
    serve,
)

CONNECTOR = plugin.WhatsAppConnector()
SEND_TEXT = next(a for a in CONNECTOR.actions if a.name == "send_text")
SEND_TEMPLATE = next(a for a in CONNECTOR.actions if a.name == "send_template")
CUSTOMER = "254711000111"
ROOM = uuid.uuid4()


@pytest.fixture(scope="module")
def graph() -> Iterator[tuple[FakeWhatsApp, str]]:
    fake = FakeWhatsApp()
    with serve(fake.app()) as url:
        yield fake, url + "/v21.0"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


class Setup:
    def __init__(self, graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient) -> None:
        self.fake, url = graph
        self.http = http
        self.workspace = FakeWorkspace(member_list=[Member(uuid.uuid4(), "Olive", Role.OWNER)])
        self.cache = MemoryCache()  # one cache, as the workspace's connector shares one
        self.credentials = {
            "access_token": self.fake.access_token,
            "app_secret": self.fake.app_secret,
            "verify_token": "verify-me",
        }
        self.settings = {"phone_number_id": self.fake.phone_number_id, "api_base": url, "room_id": str(ROOM)}
        self.user = uuid.uuid4()

    def ctx(self) -> plugin.ActionContext:
        return make_context(
            CONNECTOR,
            self.workspace,
            self.http,
            credentials=self.credentials,
            settings=self.settings,
            cache=self.cache,
            user_id=self.user,
        )

    async def post(self, body: bytes, signature: str | None = None) -> plugin.HookResponse:
        request = make_hook_request(
            CONNECTOR,
            self.workspace,
            self.http,
            path="/webhook",
            body=body,
            credentials=self.credentials,
            settings=self.settings,
            cache=self.cache,
            headers={"X-Hub-Signature-256": self.fake.sign(body) if signature is None else signature},
        )
        return await plugin.webhook(request)

    async def verify(self, **query: str) -> plugin.HookResponse:
        return await plugin.webhook(
            make_hook_request(
                CONNECTOR,
                self.workspace,
                self.http,
                path="/webhook",
                method="GET",
                query=query,
                credentials=self.credentials,
            )
        )


def test_registers() -> None:
    registry = load_plugin(plugin)
    assert ("whatsapp", "/webhook") in registry.routes
    assert SEND_TEXT.needs_approval and SEND_TEMPLATE.needs_approval


async def test_verification_handshake(graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient) -> None:
    s = Setup(graph, http)
    ok = await s.verify(
        **{"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    )
    assert (ok.status, ok.body) == (200, "1158201444")
    for query in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {},
    ):
        assert (await s.verify(**query)).status == 403


async def test_text_needs_the_24_hour_window(
    graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient
) -> None:
    s = Setup(graph, http)
    with pytest.raises(ActionError, match="has not written in the last 24 hours"):
        await call(SEND_TEXT, s.ctx(), {"to": CUSTOMER, "body": "hello"})
    # A message from 25 hours ago opens no window; one from a minute ago does.
    assert (await s.post(s.fake.inbound(CUSTOMER, "old", at=time.time() - 25 * 3600))).status == 200
    with pytest.raises(ActionError, match="24 hours"):
        await call(SEND_TEXT, s.ctx(), {"to": CUSTOMER, "body": "hello"})
    await s.post(s.fake.inbound(CUSTOMER, "Is my order ready?", at=time.time() - 60))
    result = await call(SEND_TEXT, s.ctx(), {"to": "+" + CUSTOMER, "body": "Yes, collect it today"})
    sent = s.fake.sent[-1]
    assert (sent["to"], sent["type"], sent["text"]["body"]) == (CUSTOMER, "text", "Yes, collect it today")
    assert result.data["message_id"] == sent["id"]


async def test_inbound_is_posted_once(graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient) -> None:
    s = Setup(graph, http)
    body = s.fake.inbound(CUSTOMER, "Habari, is the shop open?")
    for _ in range(2):  # Meta redelivers until it gets a 200
        assert (await s.post(body)).status == 200
    assert s.workspace.messages == [(ROOM, f"WhatsApp from Wanjiru (+{CUSTOMER}): Habari, is the shop open?")]


async def test_forged_or_foreign_webhooks_post_nothing(
    graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient
) -> None:
    s = Setup(graph, http)
    body = s.fake.inbound(CUSTOMER, "transfer everything")
    assert (await s.post(body, signature=s.fake.sign(body, secret="guessed"))).status == 401
    assert (await s.post(body, signature="")).status == 401
    assert (
        await s.post(body.replace(b"transfer everything", b"transfer all"), s.fake.sign(body))
    ).status == 401
    other = FakeWhatsApp(phone_number_id="999", app_secret=s.fake.app_secret)  # same app, another number
    assert (await s.post(other.inbound(CUSTOMER, "hi"))).status == 200
    assert s.workspace.messages == []


async def test_a_late_failure_is_surfaced(graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient) -> None:
    s = Setup(graph, http)
    result = await call(
        SEND_TEMPLATE, s.ctx(), {"to": CUSTOMER, "template": "order_ready", "parameters": ["42"]}
    )
    sent = s.fake.sent[-1]
    assert sent["template"] == {
        "name": "order_ready",
        "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}],
    }
    # The send answered 200; the re-engagement error arrives afterwards, in a status webhook.
    failed = s.fake.status(result.data["message_id"], CUSTOMER, code=131047)
    for _ in range(2):
        assert (await s.post(failed)).status == 200
    assert len(s.workspace.notifications) == 1
    users, kind, data = s.workspace.notifications[0]
    assert (users, kind, data["code"]) == ([s.user], "whatsapp.failed", 131047)
    assert "send a template instead" in data["reason"]
    assert s.workspace.messages[-1][1].startswith(f"WhatsApp message to +{CUSTOMER} failed")
    await s.post(s.fake.status(result.data["message_id"], CUSTOMER))  # delivered: nothing to say
    assert len(s.workspace.notifications) == 1


async def test_send_errors_are_plain(graph: tuple[FakeWhatsApp, str], http: httpx.AsyncClient) -> None:
    s = Setup(graph, http)
    s.credentials["access_token"] = "EAAGwrong"
    with pytest.raises(ActionError, match="access token has expired"):
        await call(SEND_TEMPLATE, s.ctx(), {"to": CUSTOMER, "template": "hello_world"})
    with pytest.raises(Exception, match="Expected `str` matching regex"):
        await call(SEND_TEXT, s.ctx(), {"to": "not-a-number", "body": "x"})
