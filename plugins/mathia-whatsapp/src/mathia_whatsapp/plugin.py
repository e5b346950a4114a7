"""WhatsApp Cloud API: send text and template messages, receive inbound messages and
delivery statuses through a signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

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

NAME = "whatsapp"
WINDOW = 24 * 3600  # free-form text only this long after the recipient's last message
KEEP = 7 * 24 * 3600  # how long sent-message owners and seen inbound ids are remembered
Phone = Annotated[str, msgspec.Meta(pattern=r"^\+?\d{7,15}$", description="recipient, international format")]
_ERRORS = {
    190: "the WhatsApp access token has expired; an admin must renew it",
    131047: "more than 24 hours passed since the recipient last wrote; send a template instead",
    131026: "the message could not be delivered to this number",
    131048: "WhatsApp held the message back as spam",
    131056: "too many messages to this recipient just now; try again later",
    130429: "the number's message throughput is exceeded; try again shortly",
    4: "the app's WhatsApp rate limit is reached; try again later",
    132000: "the template's parameters do not match the approved template",
}


class TextParams(msgspec.Struct, forbid_unknown_fields=True):
    to: Phone
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class TemplateParams(msgspec.Struct, forbid_unknown_fields=True):
    to: Phone
    template: Annotated[str, msgspec.Meta(min_length=1, max_length=512, description="approved template name")]
    language: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}(_[A-Z]{2})?$")] = "en_US"
    parameters: list[Annotated[str, msgspec.Meta(max_length=1024)]] = msgspec.field(default_factory=list)


def _digits(phone: str) -> str:
    return phone.lstrip("+")


def _explain(error: dict[str, Any]) -> str:
    code, message = error.get("code"), error.get("message", "unknown error")
    if isinstance(code, int) and code in _ERRORS:
        return _ERRORS[code]
    return f"WhatsApp refused the message: {message} ({code})"


async def _send(ctx: ActionContext, to: str, payload: dict[str, Any]) -> ActionResult:
    url = f"{ctx.settings['api_base'].rstrip('/')}/{ctx.settings['phone_number_id']}/messages"
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **payload}
    try:
        response = await ctx.http.post(
            url, json=body, timeout=15, headers={"Authorization": f"Bearer {ctx.credentials['access_token']}"}
        )
    except httpx.HTTPError:
        raise ActionError("WhatsApp could not be reached; the message was not sent") from None
    answer = response.json()
    if response.status_code != 200:
        raise ActionError(_explain(answer.get("error", {})))
    message_id = answer["messages"][0]["id"]
    # A failure may still come later, in a status webhook: remember whom to tell.
    await ctx.cache.set(f"sent:{message_id}", {"user_id": str(ctx.user_id), "to": to}, KEEP)
    return ActionResult(
        f"WhatsApp message to +{to} accepted (id {message_id}); a delivery failure would be reported here.",
        {"message_id": message_id, "to": to},
    )


async def send_text(ctx: ActionContext, params: TextParams) -> ActionResult:
    to = _digits(params.to)
    if await ctx.cache.get(f"inbound:{to}") is None:
        raise ActionError(
            f"+{to} has not written in the last 24 hours, so WhatsApp only allows a template "
            "message; use send_template"
        )
    return await _send(ctx, to, {"type": "text", "text": {"preview_url": False, "body": params.body}})


async def send_template(ctx: ActionContext, params: TemplateParams) -> ActionResult:
    template: dict[str, Any] = {"name": params.template, "language": {"code": params.language}}
    if params.parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in params.parameters]}
        ]
    return await _send(ctx, _digits(params.to), {"type": "template", "template": template})


def signature_ok(app_secret: str, body: bytes, header: str) -> bool:
    if not app_secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


async def webhook(request: HookRequest) -> HookResponse:
    if request.method == "GET":  # the subscription handshake
        token = request.credentials.get("verify_token", "")
        if (
            request.query.get("hub.mode") == "subscribe"
            and token
            and hmac.compare_digest(request.query.get("hub.verify_token", "").encode(), token.encode())
        ):
            return HookResponse(200, request.query.get("hub.challenge", ""))
        return HookResponse(403, "verification failed")
    if not signature_ok(
        request.credentials.get("app_secret", ""),
        request.body,
        request.headers.get("x-hub-signature-256", ""),
    ):
        return HookResponse(401, "signature does not verify")
    try:
        event = msgspec.json.decode(request.body)
    except msgspec.DecodeError:
        return HookResponse(400, "body is not JSON")
    for entry in event.get("entry", []) if isinstance(event, dict) else []:
        for change in entry.get("changes", []):
            value = change.get("value", {})
            if change.get("field") != "messages" or (
                value.get("metadata", {}).get("phone_number_id") != request.settings.get("phone_number_id")
            ):
                continue  # another number's traffic is none of this workspace's business
            names = {c.get("wa_id"): c.get("profile", {}).get("name", "") for c in value.get("contacts", [])}
            for message in value.get("messages", []):
                await _inbound(request, message, names)
            for status in value.get("statuses", []):
                await _status(request, status)
    return HookResponse(200, "ok")


def _room(request: HookRequest) -> uuid.UUID | None:
    room = request.settings.get("room_id")
    return uuid.UUID(room) if room else None


async def _inbound(request: HookRequest, message: dict[str, Any], names: dict[str, str]) -> None:
    sender, message_id = str(message.get("from", "")), str(message.get("id", ""))
    seen = f"seen:{message_id}"
    if not message_id or await request.cache.get(seen) is not None:
        return  # a redelivery: posted already
    await request.cache.set(seen, True, KEEP)
    sent_at = int(message.get("timestamp", time.time()))
    window = WINDOW - max(0, int(time.time()) - sent_at)
    if window > 0:
        await request.cache.set(f"inbound:{sender}", sent_at, window)
    text = (
        message.get("text", {}).get("body") if message.get("type") == "text" else f"[{message.get('type')}]"
    )
    room = _room(request)
    if room is not None:
        who = f"{names.get(sender) or 'someone'} (+{sender})"
        await request.workspace.post_message(room, f"WhatsApp from {who}: {text}")


async def _status(request: HookRequest, status: dict[str, Any]) -> None:
    if status.get("status") != "failed":
        return
    message_id = str(status.get("id", ""))
    seen = f"seen:{message_id}:failed"
    if await request.cache.get(seen) is not None:
        return
    await request.cache.set(seen, True, KEEP)
    errors = status.get("errors") or [{}]
    reason = _explain(errors[0])
    sent = await request.cache.get(f"sent:{message_id}")
    targets = [uuid.UUID(sent["user_id"])] if sent else await _admins(request.workspace)
    await request.workspace.notify(
        targets,
        "whatsapp.failed",
        {
            "message_id": message_id,
            "to": status.get("recipient_id"),
            "code": errors[0].get("code"),
            "reason": reason,
        },
    )
    room = _room(request)
    if room is not None:
        await request.workspace.post_message(
            room, f"WhatsApp message to +{status.get('recipient_id')} failed: {reason}"
        )


async def _admins(workspace: Workspace) -> list[uuid.UUID]:
    return [m.user_id for m in await workspace.members() if m.role in (Role.OWNER, Role.ADMIN)]


@dataclass(frozen=True)
class WhatsAppConnector:
    name: str = NAME
    version: str = "0.1.0"
    description: str = "Send and receive WhatsApp messages (Cloud API)"
    actions: Sequence[Action] = (
        Action(
            "send_text",
            "Send a WhatsApp text to someone who wrote within the last 24 hours",
            TextParams,
            send_text,
            needs_approval=True,
            phrases=(r"^(?:whatsapp|send a whatsapp to) (?P<to>\+?\d{7,15})[:,]? (?P<body>.+)$",),
        ),
        Action(
            "send_template",
            "Send an approved WhatsApp template message",
            TemplateParams,
            send_template,
            needs_approval=True,
        ),
    )
    credentials: Sequence[Field] = (
        Field("access_token", "Cloud API access token"),
        Field("app_secret", "Meta app secret, to check webhook signatures"),
        Field("verify_token", "the verify token set on the webhook subscription"),
    )
    settings: Sequence[Field] = field(
        default=(
            Field("phone_number_id", "the WhatsApp business phone number id"),
            Field("room_id", "room that receives inbound messages and delivery failures", required=False),
            Field(
                "api_base",
                "Graph API base with version",
                required=False,
                default="https://graph.facebook.com/v21.0",
            ),
        )
    )
    permissions: Sequence[str] = (
        "send WhatsApp messages to outside numbers",
        "post inbound WhatsApp messages into a room",
    )


@hookimpl
def mathia_connectors() -> list[WhatsAppConnector]:
    return [WhatsAppConnector()]


@hookimpl
def mathia_routes() -> list[Route]:
    return [Route(NAME, "/webhook", webhook, methods=("GET", "POST"))]
