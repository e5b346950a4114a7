"""Top up the workspace wallet: an M-Pesa STK push through IntaSend, or a card on a Stripe
Checkout page (its PaymentIntent's success credits the wallet).

The action only asks the payer to pay (and needs an admin's approval first). Credits arrive
with the provider's verified webhook, or when a status check finds the payment complete;
either way the wallet credits one provider payment exactly once."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import msgspec

from mathia.connectors import (
    Action,
    ActionContext,
    ActionError,
    ActionResult,
    Field,
    HookRequest,
    HookResponse,
    Role,
    Route,
    Workspace,
    hookimpl,
)

NAME = "payments"
STRIPE_TOLERANCE = 300  # seconds, as Stripe's own libraries use
_COMPLETE = {"COMPLETE", "COMPLETED"}  # IntaSend's docs use both spellings
Provider = Literal["intasend", "stripe"]


class TopUpParams(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=1, le=10_000_000, description="credits to add to the wallet")]
    phone: (
        Annotated[str, msgspec.Meta(pattern=r"^\+?\d{9,15}$", description="M-Pesa number, e.g. 2547…")] | None
    ) = None
    provider: Provider | None = None


class StatusParams(msgspec.Struct, forbid_unknown_fields=True):
    payment_id: Annotated[
        str,
        msgspec.Meta(
            min_length=3,
            max_length=100,
            description="IntaSend invoice id, or Stripe Checkout Session (cs_…) or PaymentIntent (pi_…) id",
        ),
    ]


def _per_unit(settings: Any) -> int:
    try:
        value = int(settings.get("credits_per_unit", "1"))
    except ValueError:
        value = 0
    if value < 1:
        raise ActionError("the credits_per_unit setting must be a whole number of at least 1")
    return value


def _api_ref(workspace_id: object, call_id: str) -> str:
    return f"mathia:{workspace_id}:{call_id}"


def _provider(ctx: ActionContext, asked: Provider | None) -> Provider:
    chosen = asked or ctx.settings.get("provider") or "intasend"
    if chosen not in ("intasend", "stripe"):
        raise ActionError(f"unknown payment provider {chosen!r}; use intasend or stripe")
    provider: Provider = "stripe" if chosen == "stripe" else "intasend"
    needed = {"intasend": ("intasend_secret_key", "intasend_public_key"), "stripe": ("stripe_secret_key",)}
    missing = [k for k in needed[provider] if not ctx.credentials.get(k)]
    if missing:
        raise ActionError(
            f"{provider} is not set up in this workspace: an admin must set {', '.join(missing)}"
        )
    return provider


async def _send(
    http: httpx.AsyncClient, method: str, url: str, provider: str, **kwargs: Any
) -> dict[str, Any]:
    try:
        response = await http.request(method, url, timeout=20, **kwargs)
    except httpx.HTTPError:
        raise ActionError(f"{provider} could not be reached; nothing was charged, try again") from None
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = (
            body.get("detail") or body.get("error", {}).get("message") or f"status {response.status_code}"
        )
        raise ActionError(f"{provider} refused the request: {detail}")
    data: dict[str, Any] = response.json()
    return data


async def top_up(ctx: ActionContext, params: TopUpParams) -> ActionResult:
    provider = _provider(ctx, params.provider)
    per_unit = _per_unit(ctx.settings)
    if params.amount % per_unit:
        raise ActionError(f"amount must be a multiple of {per_unit} credits (one currency unit)")
    money = params.amount // per_unit
    currency = ctx.settings.get("currency", "KES")
    ref = _api_ref(ctx.workspace.id, ctx.call_id)
    if provider == "intasend":
        phone = (params.phone or ctx.settings.get("default_phone") or "").lstrip("+")
        if not phone:
            raise ActionError("an M-Pesa phone number is needed, e.g. 'top up 500 credits from 254712345678'")
        body = await _send(
            ctx.http,
            "POST",
            f"{ctx.settings['intasend_base_url'].rstrip('/')}/payment/mpesa-stk-push/",
            provider,
            headers={"Authorization": f"Bearer {ctx.credentials['intasend_secret_key']}"},
            json={
                "public_key": ctx.credentials["intasend_public_key"],
                "currency": currency,
                "method": "M-PESA",
                "amount": money,
                "phone_number": phone,
                "api_ref": ref,
                "narrative": f"Mathia wallet top-up, {params.amount} credits",
            },
        )
        invoice = body["invoice"]
        return ActionResult(
            f"An M-Pesa prompt for {currency} {money} was sent to {phone}. The wallet gains {params.amount} "
            f"credits once the payment completes (invoice {invoice['invoice_id']}).",
            {"provider": provider, "payment_id": invoice["invoice_id"], "state": invoice["state"]},
        )
    return_url = ctx.settings.get("return_url")
    if not return_url:
        raise ActionError("stripe is not set up in this workspace: an admin must set return_url")
    # A Checkout Session: Stripe's own page takes the card. The PaymentIntent it makes carries
    # the metadata the webhook credits by.
    metadata = {"workspace_id": str(ctx.workspace.id), "credits": str(params.amount), "api_ref": ref}
    session = await _send(
        ctx.http,
        "POST",
        f"{ctx.settings['stripe_base_url'].rstrip('/')}/checkout/sessions",
        provider,
        headers={"Authorization": f"Bearer {ctx.credentials['stripe_secret_key']}", "Idempotency-Key": ref},
        data={
            "mode": "payment",
            "success_url": return_url,
            "cancel_url": return_url,
            "line_items[0][quantity]": 1,
            "line_items[0][price_data][currency]": currency.lower(),
            "line_items[0][price_data][unit_amount]": money * 100,
            "line_items[0][price_data][product_data][name]": f"Mathia wallet top-up, {params.amount} credits",
            **{f"metadata[{k}]": v for k, v in metadata.items()},
            **{f"payment_intent_data[metadata][{k}]": v for k, v in metadata.items()},
        },
    )
    return ActionResult(
        f"Pay {currency} {money} by card on Stripe's page: {session['url']} . The wallet gains "
        f"{params.amount} credits once the payment succeeds (payment {session['id']}).",
        {
            "provider": provider,
            "payment_id": session["id"],
            "state": session["status"],
            "url": session["url"],
        },
    )


async def _intasend_invoice(
    http: httpx.AsyncClient, credentials: Any, settings: Any, invoice_id: str
) -> dict[str, Any]:
    body = await _send(
        http,
        "POST",
        f"{settings['intasend_base_url'].rstrip('/')}/payment/status/",
        "intasend",
        headers={"Authorization": f"Bearer {credentials['intasend_secret_key']}"},
        json={"invoice_id": invoice_id, "public_key": credentials["intasend_public_key"]},
    )
    invoice: dict[str, Any] = body["invoice"]
    return invoice


async def _credit(workspace: Workspace, provider: str, payment_id: str, credits: int) -> bool:
    credited = await workspace.credit_top_up(provider, payment_id, credits)
    if credited:
        admins = [m.user_id for m in await workspace.members() if m.role in (Role.OWNER, Role.ADMIN)]
        await workspace.notify(
            admins, "wallet.top_up", {"provider": provider, "payment_id": payment_id, "credits": credits}
        )
    return credited


async def status(ctx: ActionContext, params: StatusParams) -> ActionResult:
    """Report a payment's state; a completed one that was never credited (lost webhook) is credited now."""
    prefix = _api_ref(ctx.workspace.id, "")
    paid_by = params.payment_id  # the id the payment is credited under (the webhook's)
    if params.payment_id.startswith(("cs_", "pi_")):
        _provider(ctx, "stripe")
        kind = "checkout/sessions" if params.payment_id.startswith("cs_") else "payment_intents"
        found = await _send(
            ctx.http,
            "GET",
            f"{ctx.settings['stripe_base_url'].rstrip('/')}/{kind}/{params.payment_id}",
            "stripe",
            headers={"Authorization": f"Bearer {ctx.credentials['stripe_secret_key']}"},
        )
        if not found.get("metadata", {}).get("api_ref", "").startswith(prefix):
            raise ActionError(f"no payment {params.payment_id} belongs to this workspace")
        credits = int(found["metadata"]["credits"])
        if kind == "payment_intents":
            state = found["status"]
            done = state == "succeeded"
        else:
            state = found["payment_status"]
            done = state == "paid"
            paid_by = found.get("payment_intent") or paid_by
        provider = "stripe"
    else:
        _provider(ctx, "intasend")
        invoice = await _intasend_invoice(ctx.http, ctx.credentials, ctx.settings, params.payment_id)
        if not str(invoice.get("api_ref", "")).startswith(prefix):
            raise ActionError(f"no payment {params.payment_id} belongs to this workspace")
        state = invoice["state"]
        credits = int(float(invoice["value"])) * _per_unit(ctx.settings)
        done = state in _COMPLETE
        provider = "intasend"
    if done:
        await _credit(ctx.workspace, provider, paid_by, credits)
    failed = invoice.get("failed_reason") if provider == "intasend" else None
    text = f"Payment {params.payment_id} is {state.lower()}" + (f": {failed}" if failed else "")
    return ActionResult(
        text + ("; its credits are in the wallet." if done else "."),
        {"provider": provider, "payment_id": params.payment_id, "state": state},
    )


async def intasend_webhook(request: HookRequest) -> HookResponse:
    """IntaSend signs nothing: the body carries the shared `challenge`. The invoice is then read
    back from IntaSend itself, so a forged body cannot credit anything it did not say."""
    try:
        body = msgspec.json.decode(request.body)
    except msgspec.DecodeError:
        return HookResponse(400, "body is not JSON")
    expected = request.credentials.get("intasend_challenge", "")
    if (
        not isinstance(body, dict)
        or not expected
        or not hmac.compare_digest(str(body.get("challenge", "")).encode(), expected.encode())
    ):
        return HookResponse(401, "challenge does not match")
    if str(body.get("state", "")).upper() not in _COMPLETE:
        return HookResponse(200, "noted")
    invoice_id = str(body.get("invoice_id", ""))
    try:
        invoice = await _intasend_invoice(request.http, request.credentials, request.settings, invoice_id)
    except ActionError:
        return HookResponse(503, "could not confirm the invoice with IntaSend")  # IntaSend retries later
    if invoice.get("state") not in _COMPLETE or not str(invoice.get("api_ref", "")).startswith(
        _api_ref(request.workspace.id, "")
    ):
        return HookResponse(400, "the invoice is not a completed payment of this workspace")
    credits = int(float(invoice["value"])) * _per_unit(request.settings)
    credited = await _credit(request.workspace, "intasend", invoice_id, credits)
    return HookResponse(200, "credited" if credited else "already credited")


def verify_stripe_signature(header: str, body: bytes, secret: str, now: float | None = None) -> bool:
    """Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]; any v1 may match; the timestamp must be fresh."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures or not secret:
        return False
    stamp = int(stamps[0])
    if abs((now or time.time()) - stamp) > STRIPE_TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures)


async def stripe_webhook(request: HookRequest) -> HookResponse:
    if not verify_stripe_signature(
        request.headers.get("stripe-signature", ""),
        request.body,
        request.credentials.get("stripe_webhook_secret", ""),
    ):
        return HookResponse(400, "signature does not verify")
    event = msgspec.json.decode(request.body)
    if event.get("type") != "payment_intent.succeeded":
        return HookResponse(200, "ignored")
    intent = event["data"]["object"]
    metadata = intent.get("metadata", {})
    if metadata.get("workspace_id") != str(request.workspace.id) or not re.fullmatch(
        r"\d+", metadata.get("credits", "")
    ):
        return HookResponse(400, "the payment is not a top-up of this workspace")
    credited = await _credit(request.workspace, "stripe", intent["id"], int(metadata["credits"]))
    return HookResponse(200, "credited" if credited else "already credited")


@dataclass(frozen=True)
class PaymentsConnector:
    name: str = NAME
    version: str = "0.1.0"
    description: str = "Top up the workspace wallet with M-Pesa (IntaSend) or a card (Stripe)"
    actions: Sequence[Action] = (
        Action(
            "top_up",
            "Top up the workspace wallet with credits; an owner or admin approves first",
            TopUpParams,
            top_up,
            needs_approval=True,
            timeout=30,
            phrases=(
                r"top ?up (?:the )?(?:wallet )?(?:with |by )?(?P<amount>\d+)(?: credits?)?"
                r"(?: (?:from|with|via|using|on) (?P<phone>\+?\d{9,15}))?$",
            ),
        ),
        Action(
            "status",
            "The state of a wallet top-up payment",
            StatusParams,
            status,
            timeout=20,
            phrases=(r"(?:status of )?(?:payment|invoice) (?P<payment_id>[\w-]{3,100})(?: status)?$",),
        ),
    )
    credentials: Sequence[Field] = (
        Field("intasend_secret_key", "IntaSend secret key (ISSecretKey_…)", required=False),
        Field("intasend_public_key", "IntaSend publishable key", required=False),
        Field("intasend_challenge", "the challenge set on the IntaSend webhook", required=False),
        Field("stripe_secret_key", "Stripe secret key (sk_…)", required=False),
        Field("stripe_webhook_secret", "Stripe webhook signing secret (whsec_…)", required=False),
    )
    settings: Sequence[Field] = field(
        default=(
            Field("provider", "intasend or stripe", required=False, default="intasend"),
            Field("currency", "ISO currency of payments", required=False, default="KES"),
            Field(
                "credits_per_unit", "credits bought by one unit of the currency", required=False, default="1"
            ),
            Field("default_phone", "M-Pesa number used when none is given", required=False),
            Field(
                "intasend_base_url",
                "IntaSend API base",
                required=False,
                default="https://sandbox.intasend.com/api/v1",
            ),
            Field("stripe_base_url", "Stripe API base", required=False, default="https://api.stripe.com/v1"),
            Field(
                "return_url",
                "where Stripe's payment page sends the payer back (this Mathia's address)",
                required=False,
            ),
        )
    )
    permissions: Sequence[str] = ("request payments from members", "credit the workspace wallet")


@hookimpl
def mathia_connectors() -> list[PaymentsConnector]:
    return [PaymentsConnector()]


@hookimpl
def mathia_routes() -> list[Route]:
    return [Route(NAME, "/intasend", intasend_webhook), Route(NAME, "/stripe", stripe_webhook)]
