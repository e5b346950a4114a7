from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from mathia_calendly import plugin
from mathia_calendly.fake import FakeCalendly

from mathia.connectors import ActionError
from mathia.connectors.testing import (
    FakeWorkspace,
    MemoryCache,
    call,
    load_plugin,
    make_context,
    make_hook_request,
    serve,
)

CONNECTOR = plugin.CalendlyConnector()
ACTIONS = {a.name: a for a in CONNECTOR.actions}
ROOM = uuid.uuid4()


@pytest.fixture
def calendly() -> Iterator[tuple[FakeCalendly, str]]:
    fake = FakeCalendly()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


class Member:
    """One member of one workspace, sharing the connector's cache and the workspace's secrets."""

    def __init__(self, calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient) -> None:
        self.fake, url = calendly
        self.http = http
        self.workspace = FakeWorkspace()
        self.cache = MemoryCache()
        self.user = uuid.uuid4()
        self.credentials = {
            "client_secret": self.fake.client_secret,
            "webhook_signing_key": self.fake.signing_key,
        }
        self.settings = {
            "client_id": self.fake.client_id,
            "public_url": "https://mathia.example.com",
            "auth_base": url,
            "api_base": url,
            "room_id": str(ROOM),
        }

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

    def hook(self, path: str, **kwargs: object) -> plugin.HookRequest:
        return make_hook_request(
            CONNECTOR,
            self.workspace,
            self.http,
            path=path,
            credentials=self.credentials,
            settings=self.settings,
            cache=self.cache,
            **kwargs,
        )  # type: ignore[arg-type]

    async def connect(self) -> None:
        url = (await call(ACTIONS["connect"], self.ctx(), {})).data["authorize_url"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["code_challenge_method"] == "S256" and query["client_id"] == self.fake.client_id
        code = self.fake.authorize(query["redirect_uri"], query["code_challenge"])
        answer = await plugin.oauth_callback(
            self.hook(plugin.CALLBACK, method="GET", query={"code": code, "state": query["state"]})
        )
        assert answer.status == 200, answer.body
        self.state = query["state"]


def test_registers() -> None:
    registry = load_plugin(plugin)
    assert {("calendly", "/oauth/callback"), ("calendly", "/webhook")} == set(registry.routes)


async def test_connect_then_what_is_free(calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient) -> None:
    member = Member(calendly, http)
    with pytest.raises(ActionError, match="not connected yet"):
        await call(ACTIONS["free_times"], member.ctx(), {})
    await member.connect()
    stored = member.workspace.user_secrets[member.user]
    assert set(stored) == {"access_token", "refresh_token", "expires_at", "owner"}
    assert member.workspace.notifications == [([member.user], "calendly.connected", {})]
    result = await call(ACTIONS["free_times"], member.ctx(), {})
    assert result.text.startswith("Free for 30 Minute Meeting (30 min): ")
    assert len(result.data["times"]) == 4
    link = await call(ACTIONS["booking_link"], member.ctx(), {"event_type": "30 minute meeting"})
    assert link.data["booking_url"] == member.fake.links[-1]["booking_url"]
    with pytest.raises(ActionError, match="no active event type called 'Old'"):
        await call(ACTIONS["booking_link"], member.ctx(), {"event_type": "Old"})


async def test_state_and_pkce_are_single_use(
    calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient
) -> None:
    member = Member(calendly, http)
    await member.connect()
    replay = await plugin.oauth_callback(
        member.hook(plugin.CALLBACK, method="GET", query={"code": "x", "state": member.state})
    )
    forged = await plugin.oauth_callback(
        member.hook(plugin.CALLBACK, method="GET", query={"code": "x", "state": "made-up"})
    )
    assert replay.status == forged.status == 400
    # A code obtained with another verifier (an intercepted code) does not exchange.
    url = (await call(ACTIONS["connect"], member.ctx(), {})).data["authorize_url"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    stolen = member.fake.authorize(query["redirect_uri"], "not-the-challenge")
    answer = await plugin.oauth_callback(
        member.hook(plugin.CALLBACK, method="GET", query={"code": stolen, "state": query["state"]})
    )
    assert (answer.status, answer.body) == (400, "Calendly refused: code_verifier does not match")


async def test_refresh_token_rotation(calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient) -> None:
    member = Member(calendly, http)
    await member.connect()
    first = dict(member.workspace.user_secrets[member.user])
    member.fake.expire_access_tokens()  # Calendly answers 401: refresh, store the rotated pair, retry
    await call(ACTIONS["free_times"], member.ctx(), {})
    second = member.workspace.user_secrets[member.user]
    assert (
        second["refresh_token"] != first["refresh_token"]
        and member.fake.refresh[first["refresh_token"]] is False
    )
    # The stored expiry says stale: refreshed before the call, without a 401 first.
    member.workspace.user_secrets[member.user] = {**second, "expires_at": 0}
    await call(ACTIONS["free_times"], member.ctx(), {})
    assert member.workspace.user_secrets[member.user]["refresh_token"] != second["refresh_token"]
    # A spent refresh token cannot be reused: the member is asked to reconnect.
    member.workspace.user_secrets[member.user] = {**second, "expires_at": 0}
    with pytest.raises(ActionError, match="connect Calendly again"):
        await call(ACTIONS["free_times"], member.ctx(), {})
    assert member.user not in member.workspace.user_secrets


async def test_booking_needs_a_paid_plan(calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient) -> None:
    member = Member(calendly, http)
    await member.connect()
    times = (await call(ACTIONS["available_times"], member.ctx(), {"days": 3})).data["times"]
    args = {"start_time": times[0], "invitee_email": "kamau@example.com", "invitee_name": "Kamau"}
    with pytest.raises(ActionError, match="needs a paid Calendly plan"):
        await call(ACTIONS["book"], member.ctx(), args)
    member.fake.paid_plan = True
    booked = await call(ACTIONS["book"], member.ctx(), args)
    assert booked.text == f"Booked Kamau for 30 Minute Meeting at {times[0]}."


async def test_webhook_signature(calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient) -> None:
    member = Member(calendly, http)
    body, signature = member.fake.webhook("invitee.created")
    _, forged = member.fake.webhook("invitee.created", key="guessed")
    stale_body, stale_signature = member.fake.webhook("invitee.created", at=time.time() - 600)
    for request_body, header in (
        (body, forged),
        (stale_body, stale_signature),
        (body, ""),
        (body + b" ", signature),
    ):
        answer = await plugin.webhook(
            member.hook("/webhook", body=request_body, headers={"Calendly-Webhook-Signature": header})
        )
        assert answer.status == 401
    assert member.workspace.messages == []
    for _ in range(2):  # a replayed delivery is posted once
        answer = await plugin.webhook(
            member.hook("/webhook", body=body, headers={"Calendly-Webhook-Signature": signature})
        )
        assert answer.status == 200
    assert member.workspace.messages == [
        (ROOM, "Calendly: Kamau booked 30 Minute Meeting at 2026-11-24T09:00:00.000000Z")
    ]


async def test_calls_that_find_the_token_stale_together_refresh_it_once(
    calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient
) -> None:
    member = Member(calendly, http)
    await member.connect()
    first = member.workspace.user_secrets[member.user]
    member.workspace.user_secrets[member.user] = {**first, "expires_at": 0}
    results = await asyncio.gather(*(call(ACTIONS["free_times"], member.ctx(), {}) for _ in range(3)))
    assert [len(result.data["times"]) for result in results] == [4, 4, 4]
    now = member.workspace.user_secrets[member.user]
    assert member.fake.refresh == {first["refresh_token"]: False, now["refresh_token"]: True}


async def test_calendly_out_of_reach_keeps_the_connection(
    calendly: tuple[FakeCalendly, str], http: httpx.AsyncClient
) -> None:
    member = Member(calendly, http)
    await member.connect()
    stale = {**member.workspace.user_secrets[member.user], "expires_at": 0}
    member.workspace.user_secrets[member.user] = stale
    member.settings["auth_base"] = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(ActionError, match="could not be reached"):
        await call(ACTIONS["free_times"], member.ctx(), {})
    assert member.workspace.user_secrets[member.user] == stale
