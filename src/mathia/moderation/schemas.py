from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import msgspec

from mathia.moderation.models import FlagState


class FlagOut(msgspec.Struct):
    id: UUID
    message_id: UUID
    room_id: UUID
    user_id: UUID
    score: float
    reason: str
    state: FlagState
    created_at: dt.datetime


class MuteOut(msgspec.Struct):
    user_id: UUID
    muted_until: dt.datetime | None


class PardonOut(MuteOut):
    pardoned_flags: int


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    flag_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    mute_seconds: Annotated[int, msgspec.Meta(ge=60, le=30 * 24 * 3600)]


class PolicyOut(msgspec.Struct):
    flag_limit: int
    mute_seconds: int
