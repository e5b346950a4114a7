"""A fake WhatsApp Cloud API for tests: the send endpoint with its answers and error bodies,
and builders for the signed webhooks Meta would deliver (inbound messages, statuses)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, post
from litestar.params import FromPath


@dataclass
class FakeWhatsApp:
    phone_number_id: str = "106540352242922"
    access_token: str = field(default_factory=lambda: "EAAG" + secrets.token_hex(12))
    app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    sent: list[dict[str, Any]] = field(default_factory=list)
    expired_token: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _error(self, status: int, code: int, message: str) -> Response[Any]:
        return Response(
            {
                "error": {
                    "message": message,
                    "type": "OAuthException",
                    "code": code,
                    "fbtrace_id": secrets.token_urlsafe(8),
                }
            },
            status_code=status,
        )

    def app(self) -> Litestar:
        fake = self

        @post("/v21.0/{phone_id:str}/messages", status_code=200)
        async def send(request: Request[Any, Any, Any], phone_id: FromPath[str]) -> Response[Any]:
            if fake.expired_token:
                return fake._error(401, 190, "Error validating access token: Session has expired.")
            if request.headers.get("authorization") != f"Bearer {fake.access_token}":
                return fake._error(401, 190, "Invalid OAuth access token - Cannot parse access token")
            if phone_id != fake.phone_number_id:
                return fake._error(
                    400, 100, f"Unsupported post request. Object with ID '{phone_id}' does not exist"
                )
            body = await request.json()
            if body.get("messaging_product") != "whatsapp" or not str(body.get("to", "")).isdigit():
                return fake._error(400, 100, "(#100) Invalid parameter")
            kind = body.get("type")
            if kind == "text" and not 0 < len(body.get("text", {}).get("body", "")) <= 4096:
                return fake._error(
                    400, 100, "(#100) Param text['body'] must be at most 4096 characters long."
                )
            if kind == "template" and not body.get("template", {}).get("name"):
                return fake._error(400, 132000, "(#132000) Number of parameters does not match")
            message_id = "wamid." + secrets.token_urlsafe(24)
            with fake.lock:
                fake.sent.append({**body, "id": message_id})
            return Response(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": message_id}],
                }
            )

        return Litestar([send])

    def _envelope(self, value: dict[str, Any]) -> bytes:
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": self.phone_number_id},
            **value,
        }
        return json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
            }
        ).encode()

    def inbound(self, sender: str, text: str, name: str = "Wanjiru", at: float | None = None) -> bytes:
        return self._envelope(
            {
                "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                "messages": [
                    {
                        "from": sender,
                        "id": "wamid." + secrets.token_urlsafe(24),
                        "timestamp": str(int(at or time.time())),
                        "type": "text",
                        "text": {"body": text},
                    }
                ],
            }
        )

    def status(self, message_id: str, recipient: str, code: int | None = None) -> bytes:
        """A status webhook: `failed` with error `code` (e.g. 131047) when given, else `delivered`."""
        status: dict[str, Any] = {
            "id": message_id,
            "status": "failed" if code else "delivered",
            "timestamp": str(int(time.time())),
            "recipient_id": recipient,
        }
        if code:
            status["errors"] = [
                {"code": code, "title": "Re-engagement message" if code == 131047 else "Error"}
            ]
        return self._envelope({"statuses": [status]})

    def sign(self, body: bytes, secret: str | None = None) -> str:
        return "sha256=" + hmac.new((secret or self.app_secret).encode(), body, hashlib.sha256).hexdigest()
