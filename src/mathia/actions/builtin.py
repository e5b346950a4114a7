"""Actions every workspace has, registered as a plugin like any other: `notify` and `create_task`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from mathia.connectors.api import Action, ActionContext, ActionError, ActionResult, Field, Member, Role
from mathia.connectors.hookspecs import hookimpl

_ROLES = {"owners": Role.OWNER, "admins": Role.ADMIN, "members": Role.MEMBER, "guests": Role.GUEST}


class NotifyParams(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    to: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=100,
            description="a member's display name or user id, or owners, admins, members, guests, everyone",
        ),
    ]


class CreateTaskParams(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    assignee: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=100,
            description="a member's display name or user id; `me` for the caller",
        ),
    ] = "me"


def _find(members: list[Member], who: str, ctx: ActionContext) -> Member:
    key = who.strip().lower()
    for member in members:
        if key in (str(member.user_id), member.display_name.lower()) or (
            key == "me" and member.user_id == ctx.user_id
        ):
            return member
    raise ActionError(f"no member of this workspace is called {who!r}")


async def notify(ctx: ActionContext, params: NotifyParams) -> ActionResult:
    members = await ctx.workspace.members()
    key = params.to.strip().lower()
    if key == "everyone":
        targets = members
    elif key in _ROLES:
        # "admins" includes the owners: both can administer the workspace.
        targets = [m for m in members if m.role == _ROLES[key] or (key == "admins" and m.role == Role.OWNER)]
    else:
        targets = [_find(members, params.to, ctx)]
    await ctx.workspace.notify(
        [m.user_id for m in targets], "message", {"text": params.message, "from": str(ctx.user_id)}
    )
    return ActionResult(
        f"Notified {len(targets)} member(s).", {"user_ids": [str(m.user_id) for m in targets]}
    )


async def create_task(ctx: ActionContext, params: CreateTaskParams) -> ActionResult:
    assignee = _find(await ctx.workspace.members(), params.assignee, ctx)
    task_id = await ctx.workspace.create_task(params.title, assignee.user_id, ctx.user_id, ctx.room_id)
    await ctx.workspace.notify([assignee.user_id], "task", {"task_id": str(task_id), "title": params.title})
    return ActionResult(f"Task for {assignee.display_name}: {params.title}", {"task_id": str(task_id)})


@dataclass(frozen=True)
class BuiltinConnector:
    name: str = "builtin"
    version: str = "1"
    description: str = "Notifications and tasks, in every workspace"
    actions: Sequence[Action] = (
        Action(
            "notify",
            "Send a notification to a member or to everyone with a role",
            NotifyParams,
            notify,
            phrases=(r"^(?:notify|tell) (?P<to>[\w .'-]+?)(?: that|:) (?P<message>.+)$",),
        ),
        Action(
            "create_task",
            "Assign a task to a member of the workspace",
            CreateTaskParams,
            create_task,
            phrases=(r"^(?:create a )?task for (?P<assignee>[\w .'-]+?)(?: to|:) (?P<title>.+)$",),
        ),
    )
    credentials: Sequence[Field] = field(default=())
    settings: Sequence[Field] = field(default=())
    permissions: Sequence[str] = ("notify members", "create tasks")


@hookimpl
def mathia_connectors() -> list[BuiltinConnector]:
    return [BuiltinConnector()]
