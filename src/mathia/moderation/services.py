"""Moderation: every user message is buffered in a Redis stream as it is stored; a
periodic job takes batches through a consumer group, classifies them and records flags;
past a workspace's flag limit the user is muted for a while.

Why a stream with a consumer group: an entry taken by a worker stays pending until that
worker acknowledges it (after its flags are committed). If the worker dies, the entry is
reclaimed (XAUTOCLAIM) by the next run once idle long enough, so nothing is lost; the flag
row is unique per message, so a message judged twice is counted once.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.providers import Finish
from mathia.assistant.services import record_usage
from mathia.config import Settings
from mathia.db import utcnow
from mathia.errors import NotFound
from mathia.moderation.classifier import Verdict
from mathia.moderation.models import FlagState, ModerationFlag, ModerationMute, ModerationPolicy
from mathia.rooms.models import Message, SenderKind
from mathia.tenants.models import Role
from mathia.tenants.services import workspace_admins, workspace_member
from mathia.wallet.services import charge_ai_usage

log = logging.getLogger(__name__)

STREAM = "mathia:moderation:messages"
GROUP = "moderators"


@dataclass(frozen=True)
class Buffered:
    entry_id: str
    message_id: UUID
    tenant_id: UUID
    room_id: UUID
    user_id: UUID
    body: str


@dataclass(frozen=True)
class MuteDecision:
    tenant_id: UUID
    user_id: UUID
    until: dt.datetime
    flags: int
    admin_ids: list[UUID]


async def buffer_message(redis: Redis, message: Message) -> None:
    """Queue a stored message for moderation (the send path calls this). Only people's messages are judged."""
    if message.sender_kind != SenderKind.USER or message.sender_id is None:
        return
    await redis.xadd(
        STREAM,
        {
            "message_id": str(message.id),
            "tenant_id": str(message.tenant_id),
            "room_id": str(message.room_id),
            "user_id": str(message.sender_id),
            "body": message.body,
        },
    )


async def muted_until(session: AsyncSession, tenant_id: UUID, user_id: UUID) -> dt.datetime | None:
    """When the user's mute in this workspace ends, or None when they may speak."""
    until = await session.scalar(
        select(ModerationMute.until).where(
            ModerationMute.tenant_id == tenant_id, ModerationMute.user_id == user_id
        )
    )
    return until if until is not None and until > utcnow() else None


async def _ensure_group(redis: Redis) -> None:
    try:
        # From id 0: entries buffered before the group existed are moderated too.
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _decode(entry_id: bytes | str, fields: dict[bytes, bytes]) -> Buffered:
    text = {k.decode(): v.decode() for k, v in fields.items()}
    return Buffered(
        entry_id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        message_id=UUID(text["message_id"]),
        tenant_id=UUID(text["tenant_id"]),
        room_id=UUID(text["room_id"]),
        user_id=UUID(text["user_id"]),
        body=text["body"],
    )


async def take_batch(redis: Redis, consumer: str, size: int, reclaim_seconds: int) -> list[Buffered]:
    """Up to `size` entries: first those a dead worker took and never acknowledged, then new ones."""
    await _ensure_group(redis)
    # Redis 7 answers (next, claimed, deleted); 6.2 (the embedded default's) only (next, claimed).
    reclaimed = (
        await redis.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=reclaim_seconds * 1000, start_id="0-0", count=size
        )
    )[1]
    entries: list[Any] = list(reclaimed)
    if reclaimed:
        log.warning("moderation: reclaimed %d messages a stopped worker had taken", len(reclaimed))
    if len(entries) < size:
        streams: Any = await redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=size - len(entries))
        for _stream, new in streams or []:
            entries.extend(new)
    return [_decode(entry_id, fields) for entry_id, fields in entries if fields]


async def acknowledge(redis: Redis, batch: list[Buffered]) -> None:
    ids = [item.entry_id for item in batch]
    if ids:
        await redis.xack(STREAM, GROUP, *ids)
        await redis.xdel(STREAM, *ids)


async def _insert_ignore(
    session: AsyncSession, model: Any, values: dict[str, Any], unique: list[str]
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either database; True when the row was new."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(model).values(**values).on_conflict_do_nothing(index_elements=unique).returning(model.id)
    )
    return (await session.execute(statement)).first() is not None


async def policy(session: AsyncSession, settings: Settings, tenant_id: UUID) -> ModerationPolicy:
    row = await session.scalar(select(ModerationPolicy).where(ModerationPolicy.tenant_id == tenant_id))
    return row or ModerationPolicy(
        tenant_id=tenant_id,
        flag_limit=settings.moderation_flag_limit,
        mute_seconds=settings.moderation_mute_seconds,
    )


async def record_verdicts(
    session: AsyncSession, settings: Settings, batch: list[Buffered], verdicts: list[Verdict]
) -> list[MuteDecision]:
    """Store a flag per abusive message (once) and mute whoever passed their workspace's limit."""
    existing = set(
        await session.scalars(select(Message.id).where(Message.id.in_([b.message_id for b in batch])))
    )
    offenders: set[tuple[UUID, UUID]] = set()
    for item, verdict in zip(batch, verdicts, strict=True):
        log.info(
            "moderation: message %s by %s in %s: %s (%s)",
            item.message_id,
            item.user_id,
            item.tenant_id,
            "flagged" if verdict.abusive else "clean",
            verdict.reason,
        )
        if not verdict.abusive or item.message_id not in existing:
            continue
        now = utcnow()
        new = await _insert_ignore(
            session,
            ModerationFlag,
            {
                "message_id": item.message_id,
                "tenant_id": item.tenant_id,
                "room_id": item.room_id,
                "user_id": item.user_id,
                "score": verdict.score,
                "reason": verdict.reason[:200],
                "state": FlagState.ACTIVE,
                "created_at": now,
                "updated_at": now,
            },
            ["message_id"],
        )
        if new:
            offenders.add((item.tenant_id, item.user_id))
        else:
            log.info("moderation: message %s was already flagged; not counted again", item.message_id)
    decisions = []
    for tenant_id, user_id in sorted(offenders):
        decision = await _mute_if_over_limit(session, settings, tenant_id, user_id)
        if decision is not None:
            decisions.append(decision)
    return decisions


async def bill_model_call(
    session: AsyncSession, settings: Settings, batch: list[Buffered], call: Finish
) -> None:
    """Record and charge the model call that judged `batch` to the workspaces whose messages
    were in it, each for its share of the messages (a batch mixes workspaces)."""
    counts = Counter(item.tenant_id for item in batch)
    for tenant_id, count in counts.items():
        share = msgspec.structs.replace(
            call,
            input_tokens=math.ceil(call.input_tokens * count / len(batch)),
            output_tokens=math.ceil(call.output_tokens * count / len(batch)),
        )
        await record_usage(session, share, workspace_id=tenant_id, user_id=None)
        # Named by its first stream entry: a batch judged again after a crash is charged once,
        # as its flags are counted once.
        key = f"moderation:{batch[0].entry_id}:{tenant_id}"
        try:
            await charge_ai_usage(session, tenant_id, key, [share], memo="moderation, ", settings=settings)
        except NotFound:  # a workspace without a wallet is still moderated
            log.warning("moderation of workspace %s not charged: it has no wallet", tenant_id)


async def _mute_if_over_limit(
    session: AsyncSession, settings: Settings, tenant_id: UUID, user_id: UUID
) -> MuteDecision | None:
    # Runs judging one user at once (several workers) take turns from here: each counts the
    # flags of the runs that committed before it, so none can miss the others' and skip a mute.
    await _lock_mute_row(session, tenant_id, user_id)
    rules = await policy(session, settings, tenant_id)
    active = (
        ModerationFlag.tenant_id == tenant_id,
        ModerationFlag.user_id == user_id,
        ModerationFlag.state == FlagState.ACTIVE,
    )
    count = await session.scalar(select(func.count()).select_from(ModerationFlag).where(*active)) or 0
    if count < rules.flag_limit:
        return None
    until = utcnow() + dt.timedelta(seconds=rules.mute_seconds)
    await set_mute(session, tenant_id, user_id, until)
    # The flags that led to this mute are spent: the next mute needs a fresh set.
    await session.execute(
        update(ModerationFlag).where(*active).values(state=FlagState.ACTIONED, updated_at=utcnow())
    )
    log.warning(
        "moderation: user %s muted in workspace %s until %s after %d flags",
        user_id,
        tenant_id,
        until.isoformat(),
        count,
    )
    return MuteDecision(tenant_id, user_id, until, count, await workspace_admins(session, tenant_id))


async def _lock_mute_row(session: AsyncSession, tenant_id: UUID, user_id: UUID) -> None:
    """Make sure the user's mute row exists and hold its lock until the transaction ends."""
    now = utcnow()
    await _insert_ignore(
        session,
        ModerationMute,
        {"tenant_id": tenant_id, "user_id": user_id, "until": None, "created_at": now, "updated_at": now},
        ["tenant_id", "user_id"],
    )
    await session.execute(
        select(ModerationMute.id)
        .where(ModerationMute.tenant_id == tenant_id, ModerationMute.user_id == user_id)
        .with_for_update()
    )


async def set_mute(session: AsyncSession, tenant_id: UUID, user_id: UUID, until: dt.datetime | None) -> None:
    await _lock_mute_row(session, tenant_id, user_id)
    await session.execute(
        update(ModerationMute)
        .where(ModerationMute.tenant_id == tenant_id, ModerationMute.user_id == user_id)
        .values(until=until, updated_at=utcnow())
    )


def mute_frames(decision: MuteDecision) -> list[tuple[UUID, dict[str, Any]]]:
    """The `notification` frames a mute sends: one to the user, one to each admin."""
    until = decision.until.isoformat()
    frames: list[tuple[UUID, dict[str, Any]]] = [
        (
            decision.user_id,
            {
                "type": "notification",
                "kind": "moderation.muted",
                "workspace_id": str(decision.tenant_id),
                "until": until,
                "detail": f"You are muted in this workspace until {until}.",
            },
        )
    ]
    frames += [
        (
            admin,
            {
                "type": "notification",
                "kind": "moderation.user_muted",
                "workspace_id": str(decision.tenant_id),
                "user_id": str(decision.user_id),
                "until": until,
                "flags": decision.flags,
            },
        )
        for admin in decision.admin_ids
    ]
    return frames


# Admin actions. Each checks the caller is an admin of the workspace (404 for outsiders).


async def list_flags(
    session: AsyncSession,
    workspace_id: UUID,
    caller_id: UUID,
    *,
    user_id: UUID | None = None,
    state: FlagState | None = None,
    limit: int = 100,
) -> list[ModerationFlag]:
    await workspace_member(session, workspace_id, caller_id, at_least=Role.ADMIN)
    query = select(ModerationFlag).where(ModerationFlag.tenant_id == workspace_id)
    if user_id is not None:
        query = query.where(ModerationFlag.user_id == user_id)
    if state is not None:
        query = query.where(ModerationFlag.state == state)
    return list(await session.scalars(query.order_by(ModerationFlag.created_at.desc()).limit(limit)))


async def _target_member(session: AsyncSession, workspace_id: UUID, caller_id: UUID, user_id: UUID) -> None:
    await workspace_member(session, workspace_id, caller_id, at_least=Role.ADMIN)
    await workspace_member(session, workspace_id, user_id)  # someone outside the workspace is "not found"


async def unmute(session: AsyncSession, workspace_id: UUID, caller_id: UUID, user_id: UUID) -> None:
    await _target_member(session, workspace_id, caller_id, user_id)
    await set_mute(session, workspace_id, user_id, None)
    log.warning("moderation: %s unmuted user %s in workspace %s", caller_id, user_id, workspace_id)


async def pardon(session: AsyncSession, workspace_id: UUID, caller_id: UUID, user_id: UUID) -> int:
    """Forgive every standing flag of the user and lift any mute; returns how many flags were pardoned."""
    await _target_member(session, workspace_id, caller_id, user_id)
    result = await session.execute(
        update(ModerationFlag)
        .where(
            ModerationFlag.tenant_id == workspace_id,
            ModerationFlag.user_id == user_id,
            ModerationFlag.state != FlagState.PARDONED,
        )
        .values(state=FlagState.PARDONED, updated_at=utcnow())
    )
    await set_mute(session, workspace_id, user_id, None)
    pardoned = int(getattr(result, "rowcount", 0))
    log.warning(
        "moderation: %s pardoned user %s in workspace %s (%d flags)",
        caller_id,
        user_id,
        workspace_id,
        pardoned,
    )
    return pardoned


async def update_policy(
    session: AsyncSession,
    settings: Settings,
    workspace_id: UUID,
    caller_id: UUID,
    *,
    flag_limit: int,
    mute_seconds: int,
) -> ModerationPolicy:
    await workspace_member(session, workspace_id, caller_id, at_least=Role.ADMIN)
    row = await policy(session, settings, workspace_id)
    row.flag_limit, row.mute_seconds = flag_limit, mute_seconds
    session.add(row)
    await session.flush()
    log.warning(
        "moderation: %s set workspace %s policy: %d flags, %d s mute",
        caller_id,
        workspace_id,
        flag_limit,
        mute_seconds,
    )
    return row


def unmuted_frame(workspace_id: UUID) -> dict[str, Any]:
    return {"type": "notification", "kind": "moderation.unmuted", "workspace_id": str(workspace_id)}
