from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from mathia.tenants.models import Role

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]


class WorkspaceCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class WorkspaceOut(msgspec.Struct):
    id: UUID
    name: str
    role: Role


class MeOut(msgspec.Struct):
    id: UUID
    email: str
    display_name: str
    workspaces: list[WorkspaceOut]


class InviteCreate(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["admin", "member", "guest"] = "member"


class InviteOut(msgspec.Struct):
    code: str
    role: Role
    expires_at: dt.datetime
    workspace_id: UUID


class MembershipOut(msgspec.Struct):
    workspace_id: UUID
    user_id: UUID
    role: Role
    workspace_name: str


class MemberOut(msgspec.Struct):
    user_id: UUID
    display_name: str
    role: Role
