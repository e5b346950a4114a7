from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from mathia_payments import plugin
from mathia_payments.fake import FakeIntaSend, FakeStripe

from mathia.connectors import ActionError, Member, Role
from mathia.connectors.testing import FakeWorkspace, call, load_plugin, make_context, make_hook_request, serve

CONNECTOR = plugin.PaymentsConnector()
TOP_UP = next(a for a in CONNECTOR.actions if a.name == "top_up")
STATUS = next(a for a in CONNECTOR.actions if a.name == "status")


@pytest.fixture(scope="module")
def intasend() -> Iterator[tuple[FakeIntaSend, str]]:
    fake = FakeIntaSend()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture(scope="module")
def stripe() -> Iterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def workspace() -> FakeWorkspace:
    return FakeWorkspace(member_list=[Member(uuid.uuid4(), "Olive", Role.OWNER)])


def setup(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str]
) -> tuple[dict[str, str], dict[str, str]]:
    (fake_i, url_i), (fake_s, url_s) = intasend, stripe
    credentials = {
        "intasend_secret_key": fake_i.secret_key,
        "intasend_public_key": fake_i.public_key,
        "intasend_challenge": fake_i.challenge,
        "stripe_secret_key": fake_s.secret_key,
        "stripe_webhook_secret": fake_s.webhook_secret,
    }
    return credentials, {"intasend_base_url": url_i, "stripe_base_url": url_s}


def test_registers_with_two_routes() -> None:
    registry = load_plugin(plugin)
    assert set(registry.routes) == {("payments", "/intasend"), ("payments", "/stripe")}
    assert TOP_UP.needs_approval


async def test_intasend_top_up_credits_once(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ws = workspace()
    ctx = make_context(CONNECTOR, ws, http, credentials=credentials, settings=settings)
    result = await call(TOP_UP, ctx, {"amount": 500, "phone": "254712345678"})
    invoice_id = result.data["payment_id"]
    assert intasend[0].invoices[invoice_id]["value"] == "500.00"
    assert ws.credited == {}
    body = json.dumps(intasend[0].settle(invoice_id)).encode()
    for expected in ("credited", "already credited"):  # IntaSend retries: the second delivery credits nothing
        answer = await plugin.intasend_webhook(
            make_hook_request(
                CONNECTOR, ws, http, path="/intasend", body=body, credentials=credentials, settings=settings
            )
        )
        assert (answer.status, answer.body) == (200, expected)
    assert ws.credited == {("intasend", invoice_id): 500}
    assert ws.notifications[0][1] == "wallet.top_up"


async def test_intasend_webhook_rejections(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ws = workspace()
    ctx = make_context(CONNECTOR, ws, http, credentials=credentials, settings=settings)
    pending = (await call(TOP_UP, ctx, {"amount": 300, "phone": "254712345678"})).data["payment_id"]
    # A wrong challenge, even for a completed invoice.
    paid = (await call(TOP_UP, ctx, {"amount": 200, "phone": "254712345678"})).data["payment_id"]
    forged = {**intasend[0].settle(paid), "challenge": "guessed"}
    # The right challenge but a body that lies: IntaSend itself says the invoice is still pending.
    lying = {
        "invoice_id": pending,
        "state": "COMPLETE",
        "value": "300.00",
        "challenge": intasend[0].challenge,
    }
    # An invoice of another workspace, delivered to this workspace's hook.
    other = FakeWorkspace()
    other_ctx = make_context(CONNECTOR, other, http, credentials=credentials, settings=settings)
    theirs = (await call(TOP_UP, other_ctx, {"amount": 100, "phone": "254712345678"})).data["payment_id"]
    for body, status in ((forged, 401), (lying, 400), (intasend[0].settle(theirs), 400), (b"not json", 400)):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = await plugin.intasend_webhook(
            make_hook_request(
                CONNECTOR, ws, http, path="/intasend", body=raw, credentials=credentials, settings=settings
            )
        )
        assert answer.status == status
    assert ws.credited == {}


async def test_status_credits_a_payment_whose_webhook_was_lost(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ws = workspace()
    ctx = make_context(CONNECTOR, ws, http, credentials=credentials, settings=settings)
    invoice_id = (await call(TOP_UP, ctx, {"amount": 50, "phone": "254712345678"})).data["payment_id"]
    assert (await call(STATUS, ctx, {"payment_id": invoice_id})).text == f"Payment {invoice_id} is pending."
    intasend[0].settle(invoice_id, "FAILED", "Request cancelled by user")
    assert "cancelled by user" in (await call(STATUS, ctx, {"payment_id": invoice_id})).text
    assert ws.credited == {}
    intasend[0].settle(invoice_id)
    await call(STATUS, ctx, {"payment_id": invoice_id})
    await call(STATUS, ctx, {"payment_id": invoice_id})
    assert ws.credited == {("intasend", invoice_id): 50}


async def test_provider_errors_are_plain(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ctx = make_context(
        CONNECTOR,
        workspace(),
        http,
        credentials={**credentials, "intasend_secret_key": "wrong"},
        settings=settings,
    )
    with pytest.raises(ActionError, match=r"intasend refused the request: Invalid token\."):
        await call(TOP_UP, ctx, {"amount": 500, "phone": "254712345678"})
    ctx = make_context(CONNECTOR, workspace(), http, credentials=credentials, settings=settings)
    with pytest.raises(ActionError, match="phone number is needed"):
        await call(TOP_UP, ctx, {"amount": 500})
    with pytest.raises(ActionError, match="valid Kenyan phone number"):
        await call(TOP_UP, ctx, {"amount": 500, "phone": "123456789"})
    ctx = make_context(CONNECTOR, workspace(), http, credentials={}, settings=settings)
    with pytest.raises(ActionError, match="an admin must set intasend_secret_key, intasend_public_key"):
        await call(TOP_UP, ctx, {"amount": 500, "phone": "254712345678"})


async def test_stripe_top_up_and_webhook(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ws = workspace()
    ctx = make_context(
        CONNECTOR,
        ws,
        http,
        credentials=credentials,
        settings={**settings, "provider": "stripe", "return_url": "https://mathia.example.com/"},
        call_id="approval-1",
    )
    first = await call(TOP_UP, ctx, {"amount": 700})
    # The same call retried reuses the Idempotency-Key: Stripe answers the same session.
    again = await call(TOP_UP, ctx, {"amount": 700})
    assert first.data["payment_id"] == again.data["payment_id"]
    session_id = first.data["payment_id"]
    session = stripe[0].sessions[session_id]
    assert (session["amount_total"], session["currency"]) == (70000, "kes")
    assert (
        first.data["url"] == session["url"] and session["url"] in first.text
    )  # the page that takes the card
    unpaid = await call(STATUS, ctx, {"payment_id": session_id})
    assert unpaid.data["state"] == "unpaid" and ws.credited == {}
    intent_id = stripe[0].pay(session_id)

    def hook(body: bytes, signature: str) -> plugin.HookRequest:
        return make_hook_request(
            CONNECTOR,
            ws,
            http,
            path="/stripe",
            body=body,
            headers={"Stripe-Signature": signature},
            credentials=credentials,
            settings=settings,
        )

    body, signature = stripe[0].succeed(intent_id)
    forged = stripe[0].sign(body, secret="whsec_guessed")
    stale = stripe[0].sign(body, at=time.time() - 301)
    tampered = body.replace(b'"700"', b'"7000"')
    for bad in (hook(body, forged), hook(body, stale), hook(tampered, signature), hook(body, "")):
        assert (await plugin.stripe_webhook(bad)).status == 400
    assert ws.credited == {}
    assert (await plugin.stripe_webhook(hook(body, signature))).body == "credited"
    replay_body, replay_signature = stripe[0].succeed(intent_id)  # Stripe resends the event
    assert (await plugin.stripe_webhook(hook(replay_body, replay_signature))).body == "already credited"
    assert ws.credited == {("stripe", intent_id): 700}
    # A status check after the webhook finds it paid and credits nothing twice.
    paid = await call(STATUS, ctx, {"payment_id": session_id})
    assert paid.data["state"] == "paid" and "in the wallet" in paid.text
    assert ws.credited == {("stripe", intent_id): 700}


async def test_stripe_status_credits_a_paid_session_whose_webhook_was_lost(
    intasend: tuple[FakeIntaSend, str], stripe: tuple[FakeStripe, str], http: httpx.AsyncClient
) -> None:
    credentials, settings = setup(intasend, stripe)
    ws, other = workspace(), workspace()
    stripe_settings = {**settings, "provider": "stripe", "return_url": "https://mathia.example.com/"}
    ctx = make_context(CONNECTOR, ws, http, credentials=credentials, settings=stripe_settings)
    session_id = (await call(TOP_UP, ctx, {"amount": 300})).data["payment_id"]
    intent_id = stripe[0].pay(session_id)
    stripe[0].succeed(intent_id)  # the event never reaches Mathia
    assert (await call(STATUS, ctx, {"payment_id": session_id})).data["state"] == "paid"
    assert ws.credited == {("stripe", intent_id): 300}  # under the intent's id, as the webhook would
    outsider = make_context(CONNECTOR, other, http, credentials=credentials, settings=stripe_settings)
    with pytest.raises(ActionError, match="belongs to this workspace"):
        await call(STATUS, outsider, {"payment_id": session_id})
    # Without a return address there is no page to send the payer back to.
    no_return = make_context(
        CONNECTOR, ws, http, credentials=credentials, settings={**stripe_settings, "return_url": ""}
    )
    with pytest.raises(ActionError, match="an admin must set return_url"):
        await call(TOP_UP, no_return, {"amount": 300})


def test_signature_accepts_any_of_several_v1() -> None:
    body, secret = b'{"a":1}', "whsec_x"
    good = FakeStripe(webhook_secret=secret).sign(body)
    stamp, v1 = good.split(",")
    assert plugin.verify_stripe_signature(f"{stamp},v1=deadbeef,{v1}", body, secret)
    assert not plugin.verify_stripe_signature(f"{stamp},v1=deadbeef", body, secret)
