"""A fake Calendly (OAuth server and API v2) for tests: PKCE checked, codes and refresh
tokens single-use, access tokens that expire, the documented answers and error bodies, and
signed webhook bodies."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post

USER = "https://api.calendly.com/users/AAAAAAAAAAAAAAAA"
EVENT_TYPE = "https://api.calendly.com/event_types/BBBBBBBBBBBBBBBB"


@dataclass
class FakeCalendly:
    client_id: str = "fake-client-id"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    paid_plan: bool = False
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry
    refresh: dict[str, bool] = field(default_factory=dict)  # token -> still usable
    links: list[dict[str, Any]] = field(default_factory=list)
    token_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authorize(self, redirect_uri: str, code_challenge: str) -> str:
        """The member consented on Calendly's page: answer the `code` sent to the redirect URI."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": redirect_uri, "challenge": code_challenge, "at": str(time.time())}
        return code

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access = dict.fromkeys(self.access, 0.0)

    def _issue(self) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access[access] = time.time() + 7200
        self.refresh[refresh] = True
        return {
            "token_type": "Bearer",
            "access_token": access,
            "refresh_token": refresh,
            "scope": "default",
            "created_at": int(time.time()),
            "expires_in": 7200,
            "owner": USER,
            "organization": "https://api.calendly.com/organizations/CCCCCCCCCCCCCCCC",
        }

    def _oauth_error(self, error: str, description: str) -> Response[Any]:
        return Response({"error": error, "error_description": description}, status_code=400)

    def _authorized(self, request: Request[Any, Any, Any]) -> bool:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self.access.get(token, 0) > time.time()

    def _unauthorized(self) -> Response[Any]:
        return Response(
            {"title": "Unauthenticated", "message": "The access token is expired"}, status_code=401
        )

    def app(self) -> Litestar:
        fake = self

        @post("/oauth/token", status_code=200)
        async def token(request: Request[Any, Any, Any]) -> Response[Any]:
            expected = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return Response(
                    {"error": "invalid_client", "error_description": "Client authentication failed"},
                    status_code=401,
                )
            form = {k: str(v) for k, v in (await request.form()).items()}
            with fake.lock:
                fake.token_requests += 1
                if form.get("grant_type") == "authorization_code":
                    issued = fake.codes.pop(form.get("code", ""), None)  # codes are single-use
                    if issued is None or time.time() - float(issued["at"]) > 600:
                        return fake._oauth_error(
                            "invalid_grant", "The provided authorization grant is invalid"
                        )
                    if form.get("redirect_uri") != issued["redirect_uri"]:
                        return fake._oauth_error("invalid_grant", "redirect_uri does not match")
                    verifier = form.get("code_verifier", "")
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
                        b"="
                    )
                    if challenge.decode() != issued["challenge"]:
                        return fake._oauth_error("invalid_grant", "code_verifier does not match")
                    return Response(fake._issue())
                if form.get("grant_type") == "refresh_token":
                    if not fake.refresh.get(form.get("refresh_token", "")):
                        return fake._oauth_error("invalid_grant", "The refresh token is invalid or was used")
                    fake.refresh[form["refresh_token"]] = False  # rotation: spent on use
                    return Response(fake._issue())
            return fake._oauth_error("unsupported_grant_type", "grant_type is not supported")

        @get("/users/me")
        async def me(request: Request[Any, Any, Any]) -> Response[Any]:
            if not fake._authorized(request):
                return fake._unauthorized()
            return Response(
                {
                    "resource": {
                        "uri": USER,
                        "name": "Olive",
                        "slug": "olive",
                        "email": "o@example.com",
                        "scheduling_url": "https://calendly.com/olive",
                        "timezone": "Africa/Nairobi",
                        "current_organization": "https://api.calendly.com/organizations/C",
                    }
                }
            )

        @get("/event_types")
        async def event_types(request: Request[Any, Any, Any]) -> Response[Any]:
            if not fake._authorized(request):
                return fake._unauthorized()
            if request.query_params.get("user") != USER:
                return Response(
                    {
                        "title": "Invalid Argument",
                        "message": "The supplied parameters are invalid.",
                        "details": [{"parameter": "user", "message": "must be a valid URI"}],
                    },
                    status_code=400,
                )
            return Response(
                {
                    "collection": [
                        {
                            "uri": EVENT_TYPE,
                            "name": "30 Minute Meeting",
                            "active": True,
                            "duration": 30,
                            "scheduling_url": "https://calendly.com/olive/30min",
                        },
                        {
                            "uri": EVENT_TYPE + "X",
                            "name": "Old",
                            "active": False,
                            "duration": 60,
                            "scheduling_url": "https://calendly.com/olive/old",
                        },
                    ],
                    "pagination": {"count": 2, "next_page": None, "next_page_token": None},
                }
            )

        @get("/event_type_available_times")
        async def available(request: Request[Any, Any, Any]) -> Response[Any]:
            if not fake._authorized(request):
                return fake._unauthorized()
            query = request.query_params
            start = dt.datetime.fromisoformat(query.get("start_time", "").replace("Z", "+00:00"))
            end = dt.datetime.fromisoformat(query.get("end_time", "").replace("Z", "+00:00"))
            if start < dt.datetime.now(dt.UTC) or end - start > dt.timedelta(days=7) or end <= start:
                return Response(
                    {
                        "title": "Invalid Argument",
                        "message": "The supplied parameters are invalid.",
                        "details": [
                            {
                                "parameter": "start_time",
                                "message": "must be in the future, range at most 7 days",
                            }
                        ],
                    },
                    status_code=400,
                )
            first = (start + dt.timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
            slots = [first + dt.timedelta(days=d, hours=h) for d in range(2) for h in (0, 5)]
            return Response(
                {
                    "collection": [
                        {
                            "status": "available",
                            "invitees_remaining": 1,
                            "start_time": s.isoformat().replace("+00:00", "Z"),
                            "scheduling_url": f"https://calendly.com/olive/30min/{s.isoformat()}",
                        }
                        for s in slots
                        if s < end
                    ]
                }
            )

        @post("/scheduling_links", status_code=201)
        async def scheduling_links(request: Request[Any, Any, Any]) -> Response[Any]:
            if not fake._authorized(request):
                return fake._unauthorized()
            body = await request.json()
            if body.get("owner_type") != "EventType" or body.get("max_event_count") != 1:
                return Response(
                    {
                        "title": "Invalid Argument",
                        "message": "The supplied parameters are invalid.",
                        "details": [{"parameter": "owner_type", "message": "is invalid"}],
                    },
                    status_code=400,
                )
            link = {
                "booking_url": f"https://calendly.com/d/{secrets.token_hex(3)}/30-minute-meeting",
                "owner": body["owner"],
                "owner_type": "EventType",
            }
            fake.links.append(link)
            return Response({"resource": link}, status_code=201)

        @post("/invitees", status_code=201)
        async def invitees(request: Request[Any, Any, Any]) -> Response[Any]:
            if not fake._authorized(request):
                return fake._unauthorized()
            if not fake.paid_plan:
                return Response(
                    {"title": "Permission Denied", "message": "This feature requires a paid plan."},
                    status_code=403,
                )
            body = await request.json()
            uri = f"https://api.calendly.com/scheduled_events/E/invitees/{secrets.token_hex(4)}"
            return Response(
                {
                    "resource": {
                        "uri": uri,
                        "event": "https://api.calendly.com/scheduled_events/E",
                        "cancel_url": "https://calendly.com/cancellations/x",
                        "reschedule_url": "https://calendly.com/reschedulings/x",
                        "status": "active",
                        "email": body["invitee"]["email"],
                    }
                },
                status_code=201,
            )

        return Litestar([token, me, event_types, available, scheduling_links, invitees])

    def webhook(
        self, kind: str, name: str = "Kamau", at: float | None = None, key: str | None = None
    ) -> tuple[bytes, str]:
        """A signed `invitee.created` / `invitee.canceled` delivery: (body, Calendly-Webhook-Signature)."""
        body = json.dumps(
            {
                "event": kind,
                "created_at": "2026-11-22T10:00:00.000000Z",
                "payload": {
                    "uri": f"https://api.calendly.com/scheduled_events/E/invitees/{secrets.token_hex(4)}",
                    "name": name,
                    "email": "kamau@example.com",
                    "status": "active" if kind == "invitee.created" else "canceled",
                    "scheduled_event": {
                        "name": "30 Minute Meeting",
                        "start_time": "2026-11-24T09:00:00.000000Z",
                    },
                },
            }
        ).encode()
        stamp = int(at if at is not None else time.time())
        signature = hmac.new(
            (key or self.signing_key).encode(), f"{stamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        return body, f"t={stamp},v1={signature}"
