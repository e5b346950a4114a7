"""Rooms, membership and messages. `visible_room` is the one gate: a room the
caller cannot see answers 404, whichever workspace it lives in."""

from __future__ import annotations

import logging
import re
from uuid import UUID

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mathia import ratelimit
from mathia.auth.models import User
from mathia.db import session_scope
from mathia.errors import Forbidden, InvalidInput, NotFound, RateLimited, TooLarge
from mathia.rooms.models import Message, Room, RoomMember, SenderKind
from mathia.rooms.schemas import MessageOut, MessagePage, RoomOut, SenderOut
from mathia.runtime import Runtime
from mathia.tenants.models import Membership, Role
from mathia.tenants.services import workspace_member

log = logging.getLogger(__name__)
ASSISTANT_NAME = "Mathia"
MENTION = re.compile(r"(?<![\w@])@mathia\b", re.IGNORECASE)
_NOT_FOUND = "room not found"


def room_out(room: Room, member: bool) -> RoomOut:
    return RoomOut(
        id=room.id,
        workspace_id=room.tenant_id,
        name=room.name,
        private=room.private,
        last_seq=room.last_seq,
        member=member,
    )


def message_out(message: Message, sender_name: str | None) -> MessageOut:
    kind = SenderKind(message.sender_kind)
    return MessageOut(
        id=message.id,
        room_id=message.room_id,
        body=message.body,
        created_at=message.created_at,
        seq=message.seq,
        client_id=message.client_id,
        sender=SenderOut(id=message.sender_id, kind=kind, display_name=sender_name or ASSISTANT_NAME),
    )


async def visible_room(session: AsyncSession, room_id: UUID, user_id: UUID) -> tuple[Room, bool]:
    """The room and whether the caller is in it. Guests see only rooms they were added to;
    everyone else also sees the workspace's public rooms."""
    row = (
        await session.execute(
            select(Room, Membership.role, RoomMember.id)
            .join(Membership, and_(Membership.tenant_id == Room.tenant_id, Membership.user_id == user_id))
            .outerjoin(RoomMember, and_(RoomMember.room_id == Room.id, RoomMember.user_id == user_id))
            .where(Room.id == room_id)
        )
    ).first()
    if row is None:
        raise NotFound(_NOT_FOUND)
    room, role, room_member_id = row
    if room_member_id is None and (room.private or role == Role.GUEST):
        raise NotFound(_NOT_FOUND)
    return room, room_member_id is not None


async def create_room(
    session: AsyncSession, workspace_id: UUID, creator: User, name: str, private: bool
) -> Room:
    await workspace_member(session, workspace_id, creator.id, at_least=Role.MEMBER)
    room = Room(tenant_id=workspace_id, name=name.strip(), private=private, created_by=creator.id)
    session.add(room)
    await session.flush()
    session.add(RoomMember(tenant_id=workspace_id, room_id=room.id, user_id=creator.id))
    await session.flush()
    return room


async def list_rooms(session: AsyncSession, workspace_id: UUID, user: User) -> list[RoomOut]:
    membership = await workspace_member(session, workspace_id, user.id)
    public_rooms = Room.private.is_(False) if membership.role != Role.GUEST else false()
    rows = await session.execute(
        select(Room, RoomMember.id)
        .outerjoin(RoomMember, and_(RoomMember.room_id == Room.id, RoomMember.user_id == user.id))
        .where(
            Room.tenant_id == workspace_id,
            or_(RoomMember.id.is_not(None), public_rooms),
        )
        .order_by(Room.name)
    )
    return [room_out(room, member_id is not None) for room, member_id in rows]


async def join_room(session: AsyncSession, room_id: UUID, user: User) -> Room:
    room, member = await visible_room(session, room_id, user.id)
    if not member:  # visible and not a member means public, and the caller is no guest
        session.add(RoomMember(tenant_id=room.tenant_id, room_id=room.id, user_id=user.id))
        await session.flush()
    return room


async def add_member(session: AsyncSession, room_id: UUID, caller: User, user_id: UUID) -> Room:
    room, caller_is_member = await visible_room(session, room_id, caller.id)
    caller_role = (await workspace_member(session, room.tenant_id, caller.id)).role
    if not caller_is_member and not Role(caller_role).is_admin:
        raise Forbidden("only the room's members or workspace admins can add members")
    try:
        await workspace_member(session, room.tenant_id, user_id)
    except NotFound:
        raise NotFound("user not found in this workspace") from None
    exists = await session.scalar(
        select(RoomMember.id).where(RoomMember.room_id == room.id, RoomMember.user_id == user_id)
    )
    if exists is None:
        session.add(RoomMember(tenant_id=room.tenant_id, room_id=room.id, user_id=user_id))
        await session.flush()
    return room


async def post_message(
    session: AsyncSession,
    *,
    room: Room,
    body: str,
    sender_kind: SenderKind,
    sender_id: UUID | None = None,
    client_id: str | None = None,
    message_id: UUID | None = None,
) -> Message:
    """Store a message with the room's next seq. The seq bump holds the room row's lock
    until commit, so seqs commit in order and a reader never sees a gap that later fills."""
    seq = await session.scalar(
        update(Room).where(Room.id == room.id).values(last_seq=Room.last_seq + 1).returning(Room.last_seq)
    )
    assert seq is not None
    message = Message(
        tenant_id=room.tenant_id,
        room_id=room.id,
        seq=seq,
        sender_id=sender_id,
        sender_kind=sender_kind,
        body=body,
        client_id=client_id,
    )
    if message_id is not None:  # announced before it was written (a streamed answer)
        message.id = message_id
    session.add(message)
    await session.flush()
    return message


def check_body(runtime: Runtime, body: str) -> str:
    if not body.strip():
        raise InvalidInput("body: a message cannot be empty")
    size = len(body.encode())
    if size > runtime.settings.max_message_bytes:
        raise TooLarge(f"body: {size} bytes is over the limit of {runtime.settings.max_message_bytes}")
    return body


async def send_user_message(
    runtime: Runtime, user: User, room_id: UUID, body: str, client_id: str | None = None
) -> MessageOut:
    """The one path for a member's message, from HTTP or WebSocket: check, store, fan out.
    A retry with the same client_id returns the stored message and sends nothing twice."""
    check_body(runtime, body)
    settings = runtime.settings
    async with session_scope(runtime.db) as session:
        room, _ = await visible_room(session, room_id, user.id)
        if client_id is not None:
            earlier = await session.scalar(
                select(Message).where(
                    Message.room_id == room.id, Message.sender_id == user.id, Message.client_id == client_id
                )
            )
            if earlier is not None:
                return message_out(earlier, user.display_name)
        for check in runtime.send_checks:
            await check(session, user, room)
        if wait := await ratelimit.hit(
            runtime.redis, f"send:{user.id}", settings.send_rate_limit, settings.send_rate_window
        ):
            raise RateLimited(f"too many messages; wait {wait:.1f} s", wait)
        try:
            message = await post_message(
                session,
                room=room,
                body=body,
                sender_kind=SenderKind.USER,
                sender_id=user.id,
                client_id=client_id,
            )
        except IntegrityError:  # the same client_id raced in on another connection
            raise InvalidInput("client_id: a message with this client_id is being stored") from None
    out = message_out(message, user.display_name)
    await runtime.room_bus.publish(room.id, {"type": "message.new", "message": out})
    for listener in runtime.message_listeners:
        try:
            await listener(user, room, message)
        except Exception:  # the message is stored and sent; a listener's failure must not undo that
            log.exception("message listener %r failed for message %s", listener, out.id)
    return out


async def messages_page(
    session: AsyncSession,
    room_id: UUID,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> MessagePage:
    """Messages by seq cursor, newest last: with `after`, the oldest ones after it; otherwise the
    newest ones before `before` (or the newest of all). `has_more` says whether the page was cut."""
    query = (
        select(Message, User.display_name)
        .outerjoin(User, User.id == Message.sender_id)
        .where(Message.room_id == room_id)
    )
    if before is not None:
        query = query.where(Message.seq < before)
    if after is not None:
        query = query.where(Message.seq > after).order_by(Message.seq)
    else:
        query = query.order_by(Message.seq.desc())
    rows = list(await session.execute(query.limit(limit + 1)))
    has_more = len(rows) > limit
    rows = rows[:limit]
    if after is None:
        rows.reverse()
    return MessagePage(items=[message_out(m, name) for m, name in rows], has_more=has_more)
