"""Property tests: frame decoding never crashes or accepts junk, and seq cursors page
through a room exactly once in order, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import uuid

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.rooms import services
from mathia.rooms.gateway import _decode_frame
from mathia.rooms.models import Room, SenderKind
from mathia.rooms.schemas import SendMessage, Subscribe
from mathia.tenants.models import Workspace

# What JSON can hold (json.dumps writes NaN and infinities, which are not JSON).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
frame_types = st.sampled_from(
    ["subscribe", "unsubscribe", "message.send", "typing", "ping", "ai.stop", "x", ""]
)


@given(
    st.dictionaries(
        st.sampled_from(["type", "room_id", "body", "after_seq", "ref", "sender", "message_id"]),
        json_values | frame_types,
        max_size=6,
    )
)
def test_arbitrary_json_objects_decode_or_fail_cleanly(frame: dict[str, object]) -> None:
    try:
        decoded = _decode_frame(json.dumps(frame).encode())
    except msgspec.ValidationError:
        return
    assert frame["type"] in {"subscribe", "unsubscribe", "message.send", "typing", "ping", "ai.stop"}
    assert not hasattr(decoded, "sender")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError):
        _decode_frame(data)


@given(
    room_id=st.uuids(),
    body=st.text(max_size=50),
    client_id=st.none() | st.text(min_size=1, max_size=64),
    after_seq=st.none() | st.integers(min_value=0, max_value=2**40),
    ref=st.none() | st.text() | st.integers(),
)
def test_valid_frames_round_trip(
    room_id: uuid.UUID, body: str, client_id: str | None, after_seq: int | None, ref: str | int | None
) -> None:
    for frame in (
        SendMessage(room_id=room_id, body=body, client_id=client_id, ref=ref),
        Subscribe(room_id=room_id, after_seq=after_seq, ref=ref),
    ):
        assert _decode_frame(msgspec.json.encode(frame)) == frame


async def _room_with_messages(session: AsyncSession, count: int) -> Room:
    user = User(email=f"{uuid.uuid4()}@example.com", display_name="P", password_hash="x")
    session.add(user)
    await session.flush()
    workspace = Workspace(name="props", created_by=user.id)
    session.add(workspace)
    await session.flush()
    room = Room(tenant_id=workspace.id, name="r", private=False, created_by=user.id)
    session.add(room)
    await session.flush()
    for i in range(count):
        await services.post_message(
            session, room=room, body=f"m{i}", sender_kind=SenderKind.USER, sender_id=user.id
        )
    await session.commit()
    return room


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    count=st.integers(min_value=0, max_value=30),
    limit=st.integers(min_value=1, max_value=12),
    start=st.integers(min_value=0, max_value=35),
)
async def test_cursors_visit_every_message_once(
    session: AsyncSession, count: int, limit: int, start: int
) -> None:
    room = await _room_with_messages(session, count)
    backwards: list[int] = []
    before: int | None = None
    while True:
        page = await services.messages_page(session, room.id, before=before, limit=limit)
        assert len(page.items) <= limit
        assert [m.seq for m in page.items] == sorted(m.seq for m in page.items)
        backwards = [m.seq for m in page.items] + backwards
        if not page.has_more:
            break
        before = page.items[0].seq
    assert backwards == list(range(1, count + 1))
    forwards: list[int] = []
    after = start
    while True:
        page = await services.messages_page(session, room.id, after=after, limit=limit)
        forwards += [m.seq for m in page.items]
        if not page.items:
            break
        after = page.items[-1].seq
    assert forwards == list(range(start + 1, count + 1))
