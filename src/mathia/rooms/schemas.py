"""Room bodies and the WebSocket frames (client frames are a tagged union on `type`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import msgspec

from mathia.rooms.models import SenderKind

RoomName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Seq = Annotated[int, msgspec.Meta(ge=0)]
Ref = str | int | None


class RoomCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: RoomName
    private: bool = False


class RoomOut(msgspec.Struct):
    id: UUID
    workspace_id: UUID
    name: str
    private: bool
    last_seq: int
    member: bool


class AddMember(msgspec.Struct, forbid_unknown_fields=True):
    user_id: UUID


class MessageCreate(msgspec.Struct, forbid_unknown_fields=True):
    body: str
    client_id: ClientId | None = None


class SenderOut(msgspec.Struct):
    id: UUID | None
    display_name: str
    kind: SenderKind


class MessageOut(msgspec.Struct, omit_defaults=True):
    id: UUID
    room_id: UUID
    sender: SenderOut
    body: str
    created_at: dt.datetime
    seq: int
    client_id: str | None = None


class MessagePage(msgspec.Struct):
    items: list[MessageOut]
    has_more: bool


# Client -> server frames. Unknown fields (a spoofed `sender`, say) are ignored:
# identity comes from the socket's token.
class ClientFrame(msgspec.Struct, tag_field="type", kw_only=True):
    ref: Ref = None


class Subscribe(ClientFrame, tag="subscribe"):
    room_id: UUID
    after_seq: Seq | None = None


class Unsubscribe(ClientFrame, tag="unsubscribe"):
    room_id: UUID


class SendMessage(ClientFrame, tag="message.send"):
    room_id: UUID
    body: str
    client_id: ClientId | None = None


class Typing(ClientFrame, tag="typing"):
    room_id: UUID


class Ping(ClientFrame, tag="ping"):
    pass


class StopGeneration(ClientFrame, tag="ai.stop"):
    message_id: UUID


class Authenticate(ClientFrame, tag="auth"):
    """A fresh access token for the same user: the socket then lives until it expires."""

    token: str


AnyClientFrame = Subscribe | Unsubscribe | SendMessage | Typing | Ping | StopGeneration | Authenticate
