"""Fakes of IntaSend and Stripe for tests, following their documented requests, answers,
errors and webhook schemes. Serve with `mathia.connectors.testing.serve(fake.app())`."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath


@dataclass
class FakeIntaSend:
    secret_key: str = field(default_factory=lambda: "ISSecretKey_test_" + secrets.token_hex(8))
    public_key: str = field(default_factory=lambda: "ISPubKey_test_" + secrets.token_hex(8))
    challenge: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Litestar:
        fake = self

        @post("/payment/mpesa-stk-push/", status_code=200)
        async def stk_push(request: Request[Any, Any, Any]) -> Response[Any]:
            if request.headers.get("authorization") != f"Bearer {fake.secret_key}":
                return Response({"detail": "Invalid token."}, status_code=401)
            body = await request.json()
            if body.get("public_key") != fake.public_key:
                return Response({"detail": "Invalid public key."}, status_code=400)
            phone = str(body.get("phone_number", ""))
            if not (phone.startswith("254") and len(phone) == 12 and phone.isdigit()):
                return Response(
                    {"detail": "phone_number: Enter a valid Kenyan phone number 2547XXXXXXXX."},
                    status_code=400,
                )
            if (
                body.get("method") != "M-PESA"
                or body.get("currency") != "KES"
                or int(body.get("amount", 0)) < 1
            ):
                return Response(
                    {"detail": "amount: Ensure this value is greater than or equal to 1."}, status_code=400
                )
            invoice = {
                "invoice_id": secrets.token_hex(4).upper(),
                "state": "PENDING",
                "provider": "M-PESA",
                "charges": "0.00",
                "net_amount": str(body["amount"]),
                "currency": "KES",
                "value": f"{int(body['amount']):.2f}",
                "account": phone,
                "api_ref": body.get("api_ref"),
                "failed_reason": None,
                "failed_code": None,
            }
            with fake.lock:
                fake.invoices[invoice["invoice_id"]] = invoice
            return Response(
                {"id": secrets.token_hex(8), "invoice": invoice, "customer": {"phone_number": phone}}
            )

        @post("/payment/status/", status_code=200)
        async def payment_status(request: Request[Any, Any, Any]) -> Response[Any]:
            if request.headers.get("authorization") != f"Bearer {fake.secret_key}":
                return Response({"detail": "Invalid token."}, status_code=401)
            body = await request.json()
            invoice = fake.invoices.get(str(body.get("invoice_id")))
            if invoice is None:
                return Response({"detail": "Not found."}, status_code=404)
            return Response({"invoice": invoice})

        return Litestar([stk_push, payment_status])

    def settle(
        self, invoice_id: str, state: str = "COMPLETE", failed_reason: str | None = None
    ) -> dict[str, Any]:
        """The payer acted: update the invoice and answer the webhook body IntaSend would send."""
        with self.lock:
            invoice = self.invoices[invoice_id]
            invoice.update(state=state, failed_reason=failed_reason)
        return {
            "invoice_id": invoice_id,
            "state": state,
            "provider": "M-PESA",
            "charges": "0.00",
            "net_amount": invoice["net_amount"],
            "currency": "KES",
            "value": invoice["value"],
            "account": invoice["account"],
            "api_ref": invoice["api_ref"],
            "failed_reason": failed_reason,
            "challenge": self.challenge,
        }


@dataclass
class FakeStripe:
    secret_key: str = field(default_factory=lambda: "sk_test_" + secrets.token_hex(8))
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(8))
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # Checkout Sessions
    # Checkout Session id -> the metadata its PaymentIntent will carry (payment_intent_data)
    intent_metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    # Idempotency-Key -> (request parameters, the answer first given)
    replies: dict[str, tuple[dict[str, str], tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> Response[Any]:
        return Response({"error": {"type": kind, "message": message}}, status_code=status)

    def app(self) -> Litestar:
        fake = self

        async def created(
            request: Request[Any, Any, Any], create: Callable[[dict[str, str]], tuple[int, dict[str, Any]]]
        ) -> Response[Any]:
            if request.headers.get("authorization") != f"Bearer {fake.secret_key}":
                return fake._error(401, "Invalid API Key provided.")
            form = {k: str(v) for k, v in (await request.form()).items()}
            key = request.headers.get("idempotency-key")
            with fake.lock:
                if key in fake.replies:
                    earlier, (status, body) = fake.replies[key]
                    if earlier != form:
                        return fake._error(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                            "idempotency_error",
                        )
                    return Response(body, status_code=status, headers={"Idempotent-Replayed": "true"})
                status, body = create(form)
                if key:
                    fake.replies[key] = (form, (status, body))
            return Response(body, status_code=status)

        def retrieved(
            request: Request[Any, Any, Any], kind: str, objects: dict[str, dict[str, Any]], object_id: str
        ) -> Response[Any]:
            if request.headers.get("authorization") != f"Bearer {fake.secret_key}":
                return fake._error(401, "Invalid API Key provided.")
            if object_id not in objects:
                return fake._error(404, f"No such {kind}: '{object_id}'")
            return Response(objects[object_id])

        @post("/payment_intents", status_code=200)
        async def create_intent(request: Request[Any, Any, Any]) -> Response[Any]:
            return await created(request, fake._create)

        @get("/payment_intents/{intent_id:str}")
        async def retrieve_intent(request: Request[Any, Any, Any], intent_id: FromPath[str]) -> Response[Any]:
            return retrieved(request, "payment_intent", fake.intents, intent_id)

        @post("/checkout/sessions", status_code=200)
        async def create_session(request: Request[Any, Any, Any]) -> Response[Any]:
            return await created(request, fake._create_session)

        @get("/checkout/sessions/{session_id:str}")
        async def retrieve_session(
            request: Request[Any, Any, Any], session_id: FromPath[str]
        ) -> Response[Any]:
            return retrieved(request, "checkout.session", fake.sessions, session_id)

        return Litestar([create_intent, retrieve_intent, create_session, retrieve_session])

    @staticmethod
    def _invalid(param: str, message: str) -> tuple[int, dict[str, Any]]:
        return 400, {"error": {"type": "invalid_request_error", "param": param, "message": message}}

    @classmethod
    def _check_money(
        cls, form: dict[str, str], amount: str, currency: str
    ) -> tuple[int, dict[str, Any]] | None:
        """An error answer unless the form's `amount` and `currency` fields are acceptable."""
        if not form.get(amount, "").isdigit() or int(form[amount]) < 50:
            return cls._invalid(amount, "Amount must be at least 50 cents")
        if not form.get(currency) or form[currency] != form[currency].lower():
            return cls._invalid(currency, "Invalid currency")
        return None

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if error := self._check_money(form, "amount", "currency"):
            return error
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": _nested(form, "metadata"),
        }
        self.intents[intent_id] = intent
        return 200, intent

    def _create_session(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """A Checkout Session in payment mode with one line item priced inline (`price_data`)."""
        if form.get("mode") != "payment":
            return self._invalid("mode", "This fake supports mode=payment only")
        if not form.get("success_url", "").startswith(("http://", "https://")):
            return self._invalid("success_url", "Not a valid URL")
        amount, currency = "line_items[0][price_data][unit_amount]", "line_items[0][price_data][currency]"
        if error := self._check_money(form, amount, currency):
            return error
        quantity = int(form.get("line_items[0][quantity]", "1"))
        session_id = "cs_test_" + secrets.token_hex(16)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "payment_intent": None,
            "amount_total": int(form[amount]) * quantity,
            "currency": form[currency],
            "metadata": _nested(form, "metadata"),
            "success_url": form["success_url"],
            "cancel_url": form.get("cancel_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self.intent_metadata[session_id] = _nested(form, "payment_intent_data[metadata]")
        return 200, session

    def pay(self, session_id: str) -> str:
        """The payer completes the Checkout page: its PaymentIntent (carrying
        `payment_intent_data[metadata]`) is made; the session is paid. Answers the intent's id,
        for `succeed`."""
        session = self.sessions[session_id]
        _, intent = self._create(
            {
                "amount": str(session["amount_total"]),
                "currency": session["currency"],
                **{f"metadata[{k}]": v for k, v in self.intent_metadata[session_id].items()},
            }
        )
        session.update(status="complete", payment_status="paid", payment_intent=intent["id"], url=None)
        return str(intent["id"])

    def succeed(
        self, intent_id: str, at: float | None = None, secret: str | None = None
    ) -> tuple[bytes, str]:
        """Mark the intent paid; answer the `payment_intent.succeeded` event body and its Stripe-Signature."""
        intent = self.intents[intent_id]
        intent.update(status="succeeded", amount_received=intent["amount"])
        body = json.dumps(
            {
                "id": "evt_" + secrets.token_hex(12),
                "object": "event",
                "type": "payment_intent.succeeded",
                "data": {"object": intent},
            }
        ).encode()
        return body, self.sign(body, at, secret)

    def sign(self, body: bytes, at: float | None = None, secret: str | None = None) -> str:
        stamp = int(at if at is not None else time.time())
        signature = hmac.new(
            (secret or self.webhook_secret).encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        return f"t={stamp},v1={signature}"


def _nested(form: dict[str, str], name: str) -> dict[str, str]:
    """`name[key]=value` form fields (Stripe's encoding of a hash) as a dict."""
    start = f"{name}["
    return {
        key[len(start) : -1]: value
        for key, value in form.items()
        if key.startswith(start) and "[" not in key[len(start) :]
    }
