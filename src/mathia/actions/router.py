"""From a tool call to a connector action: validation, the workspace's consent, the caller's
role, a rate limit, approval, a cache, a timeout and an audit row, in that order."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal
from uuid import UUID

import msgspec
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mathia import ratelimit
from mathia.actions.models import ActionAudit, Approval, ApprovalStatus
from mathia.assistant.offline import Rule, new_call_id
from mathia.assistant.providers import ToolCall, ToolSpec
from mathia.connectors.api import Action, ActionContext, ActionError, ActionResult, Connector, Role
from mathia.connectors.services import (
    ConnectorRuntime,
    WorkspaceFacade,
    always_enabled,
    cache_for,
    enabled_connectors,
    get_config,
    secrets_and_settings,
)
from mathia.db import utcnow
from mathia.errors import Conflict, Forbidden, NotFound
from mathia.rooms.realtime import notify_user
from mathia.tenants.models import Membership
from mathia.tenants.services import workspace_admins

log = logging.getLogger(__name__)

Status = Literal["ok", "error", "invalid", "forbidden", "not_enabled", "rate_limited", "pending_approval"]
_SECRET_KEY = re.compile(r"pass|secret|token|key|card|cvv|pin|otp|signature", re.IGNORECASE)
MASK = "***"
_MENTION = re.compile(r"^@\w+[,:]?\s*")


class Outcome(msgspec.Struct):
    """What became of a call. `text` is safe to show to the caller and to the model."""

    status: Status
    text: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    approval_id: UUID | None = None


def tool_name(connector: str, action: str) -> str:
    # Tool names allow only [a-zA-Z0-9_-]; connector names have no "__", so the split is unambiguous.
    return f"{connector}__{action}"


@functools.cache  # built once per parameter type: tools are listed on every assistant turn
def params_schema(params: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON schema of an action's parameters, inlined at the top with nested types in $defs."""
    (ref,), components = msgspec.json.schema_components([params], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[1]
    schema = dict(components.pop(name))
    if components:
        schema["$defs"] = components
    return schema


async def member_role(session: AsyncSession, tenant_id: UUID, user_id: UUID) -> Role | None:
    role = await session.scalar(
        select(Membership.role).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    return None if role is None else Role(str(role))


async def tools_for(
    runtime: ConnectorRuntime, session: AsyncSession, tenant_id: UUID, user_id: UUID
) -> list[ToolSpec]:
    """The actions this member may call in this workspace, as tools for the model."""
    role = await member_role(session, tenant_id, user_id)
    if role is None:
        return []
    return [
        ToolSpec(tool_name(c.name, a.name), a.description, params_schema(a.params))
        for c in await enabled_connectors(runtime, session, tenant_id)
        for a in c.actions
        if role.rank >= a.min_role.rank
    ]


def offline_rules(runtime: ConnectorRuntime) -> list[Rule]:
    """Rules for the offline provider: one per action phrase of every installed connector.
    Whether the workspace enabled it is checked when the call runs, like a model's call."""
    return [
        _phrase_rule(tool_name(c.name, a.name), phrase)
        for c in runtime.registry.connectors.values()
        for a in c.actions
        for phrase in a.phrases
    ]


def _phrase_rule(tool: str, phrase: str) -> Rule:
    pattern = re.compile(phrase, re.IGNORECASE)

    def rule(text: str) -> ToolCall | None:
        message = _MENTION.sub("", " ".join(text.split())).rstrip("?!. ")
        found = pattern.search(message)
        if found is None:
            return None
        args = {k: v.strip() for k, v in found.groupdict().items() if v is not None}
        return ToolCall(id=new_call_id(), name=tool, arguments=args)

    return rule


def mask(value: Any, secrets: list[str]) -> Any:
    """Parameters as they may be stored or logged: secret-looking keys and known secret values hidden."""
    if isinstance(value, Mapping):
        return {k: MASK if _SECRET_KEY.search(str(k)) else mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
    return value


async def run_action(
    runtime: ConnectorRuntime,
    session: AsyncSession,
    *,
    tenant_id: UUID,
    user_id: UUID,
    room_id: UUID | None,
    tool: str,
    arguments: Mapping[str, Any],
) -> Outcome:
    """Run one tool call for a member. Never raises for the caller's mistakes: the outcome tells."""
    connector_name, _, action_name = tool.partition("__")
    connector = runtime.registry.connectors.get(connector_name)
    action = runtime.registry.action(connector_name, action_name)
    if connector is None or action is None:
        return Outcome("invalid", f"there is no action called {tool!r}")
    config = await get_config(session, tenant_id, connector_name)
    if not (always_enabled(connector_name) or (config and config.enabled)):
        return Outcome("not_enabled", f"the {connector_name} connector is not enabled in this workspace")
    role = await member_role(session, tenant_id, user_id)
    if role is None or role.rank < action.min_role.rank:
        return Outcome("forbidden", f"{tool} needs the {action.min_role} role or higher")
    try:
        params = msgspec.convert(dict(arguments), action.params, strict=False)
    except msgspec.ValidationError as exc:
        return Outcome("invalid", f"invalid parameters for {tool}: {exc}")
    credentials, _ = secrets_and_settings(runtime, config, connector)
    shown = mask(msgspec.to_builtins(params), list(credentials.values()))
    retry = await ratelimit.hit(
        runtime.redis,
        f"action:{tenant_id}:{connector_name}",
        runtime.settings.action_rate_limit,
        runtime.settings.action_rate_window,
    )
    if retry is not None:
        await _audit(session, tenant_id, user_id, connector_name, action_name, shown, "rate_limited", "", 0)
        return Outcome(
            "rate_limited",
            f"too many {connector_name} actions; try again in {retry:.0f} s",
            {"retry_after": retry},
        )
    if action.needs_approval:
        return await _request_approval(
            runtime,
            session,
            tenant_id,
            user_id,
            room_id,
            connector,
            action,
            msgspec.to_builtins(params),
            shown,
        )
    return await execute(runtime, session, tenant_id, user_id, role, room_id, connector, action, params)


async def execute(
    runtime: ConnectorRuntime,
    session: AsyncSession,
    tenant_id: UUID,
    user_id: UUID,
    role: Role,
    room_id: UUID | None,
    connector: Connector,
    action: Action,
    params: msgspec.Struct,
    approval_id: UUID | None = None,
) -> Outcome:
    """Run a validated, allowed action, with its cache and timeout, and audit it."""
    config = await get_config(session, tenant_id, connector.name)
    credentials, settings = secrets_and_settings(runtime, config, connector)
    secrets = [v for v in credentials.values() if v]
    raw = msgspec.to_builtins(params)
    shown = mask(raw, secrets)
    cache = cache_for(runtime, connector.name, tenant_id)
    cache_key = "action:" + action.name + ":" + hashlib.sha256(msgspec.json.encode(raw)).hexdigest()
    if action.cache_ttl and (hit := await cache.get(cache_key)) is not None:
        await _audit(
            session, tenant_id, user_id, connector.name, action.name, shown, "cached", "", 0, approval_id
        )
        return Outcome("ok", hit["text"], hit["data"])
    ctx = ActionContext(
        connector.name,
        WorkspaceFacade(runtime, session, tenant_id, connector.name),
        user_id,
        role,
        room_id,
        credentials,
        settings,
        runtime.http,
        cache,
        str(approval_id or uuid.uuid4()),
    )
    started = time.perf_counter()
    try:
        async with asyncio.timeout(action.timeout):
            result = await action.handler(ctx, params)
        if not isinstance(result, ActionResult):
            raise TypeError(f"the handler returned {type(result).__name__}, not ActionResult")
        outcome = Outcome("ok", mask(result.text, secrets), mask(dict(result.data), secrets))
    except ActionError as exc:
        outcome = Outcome("error", mask(str(exc), secrets))
    except TimeoutError:
        outcome = Outcome("error", f"{connector.name} did not answer within {action.timeout:g} s")
    except Exception as exc:
        log.error(
            "action %s.%s failed: %s: %s",
            connector.name,
            action.name,
            type(exc).__name__,
            mask(str(exc), secrets),
        )
        outcome = Outcome("error", f"the {connector.name} connector failed; the error was logged")
    duration = round((time.perf_counter() - started) * 1000)
    await _audit(
        session,
        tenant_id,
        user_id,
        connector.name,
        action.name,
        shown,
        outcome.status,
        outcome.text,
        duration,
        approval_id,
    )
    if outcome.status == "ok" and action.cache_ttl:
        await cache.set(cache_key, {"text": outcome.text, "data": outcome.data}, action.cache_ttl)
    return outcome


async def _audit(
    session: AsyncSession,
    tenant_id: UUID,
    user_id: UUID,
    connector: str,
    action: str,
    params: dict[str, Any],
    outcome: str,
    detail: str,
    duration_ms: int,
    approval_id: UUID | None = None,
) -> None:
    session.add(
        ActionAudit(
            tenant_id=tenant_id,
            user_id=user_id,
            connector=connector,
            action=action,
            params=params,
            outcome=outcome,
            detail=detail[:2000],
            duration_ms=duration_ms,
            approval_id=approval_id,
        )
    )
    await session.flush()


def _summary(action: Action, connector: Connector, params: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{connector.name}: {action.description} ({shown})"


async def _request_approval(
    runtime: ConnectorRuntime,
    session: AsyncSession,
    tenant_id: UUID,
    user_id: UUID,
    room_id: UUID | None,
    connector: Connector,
    action: Action,
    params: dict[str, Any],
    shown: dict[str, Any],
) -> Outcome:
    # The parameters are kept whole to run later; only the masked ones are shown or audited.
    approval = Approval(
        tenant_id=tenant_id,
        user_id=user_id,
        room_id=room_id,
        connector=connector.name,
        action=action.name,
        params=params,
        summary=_summary(action, connector, shown),
        status=ApprovalStatus.PENDING,
        expires_at=utcnow() + dt.timedelta(seconds=runtime.settings.approval_ttl),
    )
    session.add(approval)
    await session.flush()
    await _audit(
        session,
        tenant_id,
        user_id,
        connector.name,
        action.name,
        shown,
        "pending_approval",
        "",
        0,
        approval.id,
    )
    workspace = WorkspaceFacade(runtime, session, tenant_id, connector.name)
    await workspace.notify(
        await workspace_admins(session, tenant_id),
        "approval",
        {"approval_id": str(approval.id), "summary": approval.summary, "status": str(approval.status)},
    )
    return Outcome(
        "pending_approval",
        f"waiting for an owner or admin to approve: {approval.summary}",
        approval_id=approval.id,
    )


async def list_approvals(
    session: AsyncSession,
    redis: Redis,
    tenant_id: UUID,
    user_id: UUID,
    role: Role,
    status: ApprovalStatus | None = ApprovalStatus.PENDING,
) -> list[Approval]:
    """Admins see every request of the workspace, other members their own."""
    await expire_approvals(session, redis, tenant_id)
    query = select(Approval).where(Approval.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Approval.status == status.value)
    if not role.rank >= Role.ADMIN.rank:
        query = query.where(Approval.user_id == user_id)
    return list(await session.scalars(query.order_by(Approval.created_at)))


async def expire_approvals(session: AsyncSession, redis: Redis, tenant_id: UUID | None = None) -> int:
    """Mark pending approvals past their time expired, and tell each requester and the
    workspace's approvers. Runs before approvals are listed, and as a worker sweep."""
    query = update(Approval).where(
        Approval.status == ApprovalStatus.PENDING.value, Approval.expires_at <= utcnow()
    )
    if tenant_id is not None:
        query = query.where(Approval.tenant_id == tenant_id)
    expired = (
        await session.execute(
            query.values(status=ApprovalStatus.EXPIRED.value).returning(
                Approval.id, Approval.tenant_id, Approval.user_id, Approval.summary
            )
        )
    ).all()
    approvers: dict[UUID, list[UUID]] = {}  # one lookup per workspace, however many expired
    for approval_id, workspace_id, requester, summary in expired:
        if workspace_id not in approvers:
            approvers[workspace_id] = await workspace_admins(session, workspace_id)
        frame = {
            "type": "notification",
            "kind": "approval",
            "workspace_id": str(workspace_id),
            "approval_id": str(approval_id),
            "summary": summary,
            "status": ApprovalStatus.EXPIRED.value,
        }
        for user_id in {requester, *approvers[workspace_id]}:
            await notify_user(redis, user_id, frame)
    return len(expired)


async def decide(
    runtime: ConnectorRuntime, session: AsyncSession, approval_id: UUID, approver_id: UUID, approve: bool
) -> tuple[Approval, Outcome | None]:
    """Approve (and run) or reject a pending action. Only one decision ever wins."""
    approval = await session.get(Approval, approval_id)
    approver_role = None if approval is None else await member_role(session, approval.tenant_id, approver_id)
    if approval is None or approver_role is None:
        raise NotFound("no such approval")
    if approver_role.rank < Role.ADMIN.rank:
        raise Forbidden("only an owner or admin can decide on an approval")
    new_status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    # The conditional update is the lock: of two concurrent decisions only one changes a row.
    now = utcnow()
    claimed = await session.execute(
        update(Approval)
        .where(
            Approval.id == approval_id,
            Approval.status == ApprovalStatus.PENDING.value,
            Approval.expires_at > now,
        )
        .values(status=new_status.value, decided_by=approver_id, decided_at=now)
    )
    await session.refresh(approval)
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        # Marking it expired is left to the sweep: this request's transaction rolls back.
        status = ApprovalStatus.EXPIRED if approval.status == ApprovalStatus.PENDING else approval.status
        raise Conflict(f"this approval is already {status}")
    outcome = await _run_approved(runtime, session, approval) if approve else None
    approval.result = outcome.text if outcome else "rejected"
    await session.flush()
    workspace = WorkspaceFacade(runtime, session, approval.tenant_id, approval.connector)
    await workspace.notify(
        [approval.user_id],
        "approval",
        {
            "approval_id": str(approval.id),
            "summary": approval.summary,
            "status": str(approval.status),
            "result": approval.result,
        },
    )
    return approval, outcome


async def _run_approved(runtime: ConnectorRuntime, session: AsyncSession, approval: Approval) -> Outcome:
    connector = runtime.registry.connectors.get(approval.connector)
    action = runtime.registry.action(approval.connector, approval.action)
    config = await get_config(session, approval.tenant_id, approval.connector)
    role = await member_role(session, approval.tenant_id, approval.user_id)
    if (
        connector is None
        or action is None
        or not (always_enabled(connector.name) or (config and config.enabled))
    ):
        return Outcome("not_enabled", f"the {approval.connector} connector is no longer enabled")
    if role is None or role.rank < action.min_role.rank:
        return Outcome("forbidden", "the requester may no longer run this action")
    params = msgspec.convert(approval.params, action.params, strict=False)
    return await execute(
        runtime,
        session,
        approval.tenant_id,
        approval.user_id,
        role,
        approval.room_id,
        connector,
        action,
        params,
        approval.id,
    )
