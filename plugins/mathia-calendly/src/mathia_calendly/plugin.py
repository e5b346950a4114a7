"""Calendly API v2 for each member's own calendar: OAuth (authorization code with PKCE,
rotating refresh tokens kept encrypted per member), free times, single-use booking links,
booking an invitee where the plan allows, and a signed webhook for bookings."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

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
    Route,
    Workspace,
    hookimpl,
)

NAME = "calendly"
CALLBACK = "/oauth/callback"
STATE_TTL = 600  # Calendly's authorization codes live 10 minutes too
SIGNATURE_TOLERANCE = 180  # seconds; Calendly's own sample uses about 3 minutes
EventTypeName = Annotated[str, msgspec.Meta(max_length=200, description="event type name; empty = the first")]


class NoParams(msgspec.Struct, forbid_unknown_fields=True):
    pass


class TimesParams(msgspec.Struct, forbid_unknown_fields=True):
    event_type: EventTypeName = ""
    days: Annotated[int, msgspec.Meta(ge=1, le=7)] = 7


class LinkParams(msgspec.Struct, forbid_unknown_fields=True):
    event_type: EventTypeName = ""


class BookParams(msgspec.Struct, forbid_unknown_fields=True):
    start_time: Annotated[str, msgspec.Meta(description="RFC 3339, one of the available times")]
    invitee_email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    invitee_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    event_type: EventTypeName = ""


def _redirect_uri(settings: Any, workspace_id: object) -> str:
    return f"{settings['public_url'].rstrip('/')}/hooks/{NAME}/{workspace_id}{CALLBACK}"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def connect(ctx: ActionContext, params: NoParams) -> ActionResult:
    """Start the OAuth flow for the caller: the answer is the link to open."""
    state, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    await ctx.cache.set(f"oauth:{state}", {"user_id": str(ctx.user_id), "verifier": verifier}, STATE_TTL)
    query = urlencode(
        {
            "client_id": ctx.settings["client_id"],
            "response_type": "code",
            "redirect_uri": _redirect_uri(ctx.settings, ctx.workspace.id),
            "state": state,
            "code_challenge_method": "S256",
            "code_challenge": _challenge(verifier),
        }
    )
    url = f"{ctx.settings['auth_base'].rstrip('/')}/oauth/authorize?{query}"
    return ActionResult(
        f"Open this link within 10 minutes to connect your Calendly account: {url}", {"authorize_url": url}
    )


class _Refused(ActionError):
    """Calendly's OAuth server answered with an error; `code` is its OAuth error code."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"Calendly refused: {description or code}")
        self.code = code


async def _token_request(
    http: httpx.AsyncClient, credentials: Any, settings: Any, form: dict[str, str]
) -> dict[str, Any]:
    try:
        response = await http.post(
            f"{settings['auth_base'].rstrip('/')}/oauth/token",
            data=form,
            timeout=15,
            auth=(settings["client_id"], credentials["client_secret"]),
        )
    except httpx.HTTPError:
        raise ActionError("Calendly could not be reached; try again shortly") from None
    body: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise _Refused(str(body.get("error")), str(body.get("error_description") or ""))
    return body


def _stored(tokens: dict[str, Any]) -> dict[str, Any]:
    return {
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": int(time.time()) + int(tokens.get("expires_in", 7200)),
        "owner": tokens.get("owner"),
    }


async def oauth_callback(request: HookRequest) -> HookResponse:
    state = request.query.get("state", "")
    pending = await request.cache.get(f"oauth:{state}") if state else None
    if not pending or pending.get("used"):
        return HookResponse(
            400, "This link is unknown or was already used; ask Mathia to connect Calendly again."
        )
    await request.cache.set(f"oauth:{state}", {"used": True}, STATE_TTL)  # single use
    if "code" not in request.query:
        return HookResponse(400, f"Calendly did not connect: {request.query.get('error', 'no code')}")
    try:
        tokens = await _token_request(
            request.http,
            request.credentials,
            request.settings,
            {
                "grant_type": "authorization_code",
                "code": request.query["code"],
                "redirect_uri": _redirect_uri(request.settings, request.workspace.id),
                "code_verifier": pending["verifier"],
            },
        )
    except ActionError as exc:
        return HookResponse(400, str(exc))
    user_id = uuid.UUID(pending["user_id"])
    await request.workspace.set_user_secret(user_id, _stored(tokens))
    await request.workspace.notify([user_id], "calendly.connected", {})
    return HookResponse(200, "Calendly is connected. You can close this window.")


class _Client:
    """Calendly API calls for one member, refreshing (and rotating) the token when it expires."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.base = ctx.settings["api_base"].rstrip("/")

    async def _stored_tokens(self) -> dict[str, Any]:
        tokens = await self.ctx.workspace.get_user_secret(self.ctx.user_id)
        if tokens is None:
            raise ActionError("your Calendly account is not connected yet; ask me to connect Calendly")
        return tokens

    async def _tokens(self, force_refresh: bool = False) -> dict[str, Any]:
        tokens = await self._stored_tokens()
        if not force_refresh and tokens["expires_at"] - 60 >= time.time():
            return tokens
        # Refresh tokens are single-use: two calls of one member must not both spend the same one.
        async with self.ctx.cache.lock(f"refresh:{self.ctx.user_id}", ttl=30):
            current = await self._stored_tokens()
            if current["refresh_token"] != tokens["refresh_token"]:
                return current  # refreshed by another call while this one waited
            try:
                fresh = await _token_request(
                    self.ctx.http,
                    self.ctx.credentials,
                    self.ctx.settings,
                    {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                )
            except _Refused as refused:
                if refused.code != "invalid_grant":
                    raise
                # A spent or revoked refresh token cannot recover: forget it and ask to reconnect.
                await self.ctx.workspace.set_user_secret(self.ctx.user_id, None)
                raise ActionError(
                    "your Calendly connection has expired; ask me to connect Calendly again"
                ) from None
            tokens = _stored(fresh)  # refresh tokens are single-use: keep the new one at once
            await self.ctx.workspace.set_user_secret(self.ctx.user_id, tokens)
        return tokens

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(2):
            tokens = await self._tokens(force_refresh=attempt == 1)
            try:
                response = await self.ctx.http.request(
                    method,
                    f"{self.base}{path}",
                    timeout=15,
                    headers={"Authorization": f"Bearer {tokens['access_token']}"},
                    **kwargs,
                )
            except httpx.HTTPError:
                raise ActionError("Calendly could not be reached; try again shortly") from None
            if response.status_code != 401:
                break
        if response.status_code == 429:
            reset = response.headers.get("x-ratelimit-reset", "a few")
            raise ActionError(f"Calendly's rate limit is reached; try again in {reset} seconds")
        body: dict[str, Any] = response.json()
        if response.status_code == 403 and path == "/invitees":
            raise ActionError("booking directly needs a paid Calendly plan; send a booking link instead")
        if response.status_code >= 400:
            details = "; ".join(f"{d.get('parameter')}: {d.get('message')}" for d in body.get("details", []))
            raise ActionError(
                f"Calendly refused: {body.get('message', response.status_code)}"
                + (f" ({details})" if details else "")
            )
        return body

    async def event_type(self, name: str) -> dict[str, Any]:
        me = (await self.call("GET", "/users/me"))["resource"]
        types = (await self.call("GET", "/event_types", params={"user": me["uri"], "active": "true"}))[
            "collection"
        ]
        active: list[dict[str, Any]] = [t for t in types if t.get("active", True)]
        wanted = [t for t in active if t["name"].lower() == name.lower()] if name else active
        chosen = wanted[0] if wanted else None
        if chosen is None:
            names = ", ".join(t["name"] for t in active) or "none"
            raise ActionError(f"no active event type called {name!r}; yours are: {names}")
        return chosen


async def available_times(ctx: ActionContext, params: TimesParams) -> ActionResult:
    client = _Client(ctx)
    event_type = await client.event_type(params.event_type)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)  # the range must lie in the future
    end = start + dt.timedelta(days=params.days)
    found = await client.call(
        "GET",
        "/event_type_available_times",
        params={
            "event_type": event_type["uri"],
            "start_time": start.isoformat().replace("+00:00", "Z"),
            "end_time": end.isoformat().replace("+00:00", "Z"),
        },
    )
    times = [t["start_time"] for t in found["collection"] if t.get("status") == "available"]
    if not times:
        return ActionResult(
            f"No free {event_type['name']} slots in the next {params.days} days.", {"times": []}
        )
    shown = ", ".join(times[:10]) + (f" and {len(times) - 10} more" if len(times) > 10 else "")
    return ActionResult(
        f"Free for {event_type['name']} ({event_type.get('duration', '?')} min): {shown}",
        {"event_type": event_type["uri"], "times": times},
    )


async def free_times(ctx: ActionContext, params: NoParams) -> ActionResult:
    return await available_times(ctx, TimesParams())


async def booking_link(ctx: ActionContext, params: LinkParams) -> ActionResult:
    client = _Client(ctx)
    event_type = await client.event_type(params.event_type)
    link = (
        await client.call(
            "POST",
            "/scheduling_links",
            json={"max_event_count": 1, "owner": event_type["uri"], "owner_type": "EventType"},
        )
    )["resource"]
    return ActionResult(
        f"Single-use booking link for {event_type['name']}: {link['booking_url']}",
        {"booking_url": link["booking_url"]},
    )


async def book(ctx: ActionContext, params: BookParams) -> ActionResult:
    client = _Client(ctx)
    event_type = await client.event_type(params.event_type)
    booked = (
        await client.call(
            "POST",
            "/invitees",
            json={
                "event_type": event_type["uri"],
                "start_time": params.start_time,
                "invitee": {
                    "email": params.invitee_email,
                    "name": params.invitee_name,
                    "timezone": params.timezone,
                },
            },
        )
    )["resource"]
    return ActionResult(
        f"Booked {params.invitee_name} for {event_type['name']} at {params.start_time}.",
        {"event": booked["event"], "invitee": booked["uri"], "cancel_url": booked["cancel_url"]},
    )


def signature_ok(signing_key: str, header: str, body: bytes, now: float | None = None) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not signing_key or not stamp.isdigit() or not given:
        return False
    if abs((now or time.time()) - int(stamp)) > SIGNATURE_TOLERANCE:
        return False
    expected = hmac.new(signing_key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


async def webhook(request: HookRequest) -> HookResponse:
    if not signature_ok(
        request.credentials.get("webhook_signing_key", ""),
        request.headers.get("calendly-webhook-signature", ""),
        request.body,
    ):
        return HookResponse(401, "signature does not verify")
    event = msgspec.json.decode(request.body)
    kind, payload = event.get("event"), event.get("payload", {})
    if kind not in ("invitee.created", "invitee.canceled"):
        return HookResponse(200, "ignored")
    key = f"seen:{kind}:{payload.get('uri')}"
    if await request.cache.get(key) is not None:
        return HookResponse(200, "already handled")
    await request.cache.set(key, True, 7 * 24 * 3600)
    await _announce(request.workspace, request.settings.get("room_id"), kind, payload)
    return HookResponse(200, "ok")


async def _announce(workspace: Workspace, room_id: str | None, kind: str, payload: dict[str, Any]) -> None:
    if not room_id:
        return
    event = payload.get("scheduled_event", {})
    what = "booked" if kind == "invitee.created" else "cancelled"
    await workspace.post_message(
        uuid.UUID(room_id),
        f"Calendly: {payload.get('name', 'someone')} {what} "
        f"{event.get('name', 'a meeting')} at {event.get('start_time')}",
    )


@dataclass(frozen=True)
class CalendlyConnector:
    name: str = NAME
    version: str = "0.1.0"
    description: str = "Each member's Calendly: free times, booking links and bookings"
    actions: Sequence[Action] = (
        Action(
            "connect",
            "Connect the caller's Calendly account (OAuth)",
            NoParams,
            connect,
            phrases=(r"^connect (?:my )?calendly$",),
        ),
        Action(
            "free_times",
            "What is free on the caller's calendar this week",
            NoParams,
            free_times,
            cache_ttl=0,
            phrases=(r"what(?:'s| is) free on my calendar",),
        ),
        Action(
            "available_times",
            "Available times of one of the caller's event types",
            TimesParams,
            available_times,
        ),
        Action(
            "booking_link",
            "A single-use booking link for one of the caller's event types",
            LinkParams,
            booking_link,
            phrases=(r"^(?:send|make|create) (?:me )?a booking link$",),
        ),
        Action(
            "book",
            "Book an invitee into one of the caller's event types (paid Calendly plans)",
            BookParams,
            book,
        ),
    )
    credentials: Sequence[Field] = (
        Field("client_secret", "OAuth client secret of the Calendly app"),
        Field("webhook_signing_key", "signing key of the Calendly webhook subscription", required=False),
    )
    settings: Sequence[Field] = field(
        default=(
            Field("client_id", "OAuth client id of the Calendly app"),
            Field("public_url", "this server's public URL, for the OAuth redirect"),
            Field("room_id", "room that hears of new and cancelled bookings", required=False),
            Field("auth_base", "Calendly OAuth base", required=False, default="https://auth.calendly.com"),
            Field("api_base", "Calendly API base", required=False, default="https://api.calendly.com"),
        )
    )
    permissions: Sequence[str] = (
        "read members' Calendly event types and availability",
        "create booking links and bookings for members",
    )


@hookimpl
def mathia_connectors() -> list[CalendlyConnector]:
    return [CalendlyConnector()]


@hookimpl
def mathia_routes() -> list[Route]:
    return [Route(NAME, CALLBACK, oauth_callback, methods=("GET",)), Route(NAME, "/webhook", webhook)]
