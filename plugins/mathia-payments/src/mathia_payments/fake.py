"""Fakes of IntaSend and Stripe for tests, following their documented requests, answers,
errors and webhook schemes. Serve with `mathia.connectors.testing.serve(fake.app())`."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
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
    # Idempotency-Key -> (request parameters, the answer first given)
    replies: dict[str, tuple[dict[str, str], tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> Response[Any]:
        return Response({"error": {"type": kind, "message": message}}, status_code=status)

    def app(self) -> Litestar:
        fake = self

        @post("/payment_intents", status_code=200)
        async def create(request: Request[Any, Any, Any]) -> Response[Any]:
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
                status, body = fake._create(form)
                if key:
                    fake.replies[key] = (form, (status, body))
            return Response(body, status_code=status)

        @get("/payment_intents/{intent_id:str}")
        async def retrieve(request: Request[Any, Any, Any], intent_id: FromPath[str]) -> Response[Any]:
            if request.headers.get("authorization") != f"Bearer {fake.secret_key}":
                return fake._error(401, "Invalid API Key provided.")
            intent = fake.intents.get(intent_id)
            if intent is None:
                return fake._error(404, f"No such payment_intent: '{intent_id}'")
            return Response(intent)

        return Litestar([create, retrieve])

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if not form.get("amount", "").isdigit() or int(form["amount"]) < 50:
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "param": "amount",
                    "message": "Amount must be at least 50 cents",
                }
            }
        if form.get("currency", "") != form.get("currency", "").lower() or not form.get("currency"):
            return 400, {
                "error": {"type": "invalid_request_error", "param": "currency", "message": "Invalid currency"}
            }
        intent_id = "pi_" + secrets.token_hex(12)
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        }
        self.intents[intent_id] = intent
        return 200, intent

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
