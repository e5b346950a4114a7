"""Workspaces, memberships and invites. Every lookup by id is scoped to the
caller: a workspace one does not belong to answers 404, as if it did not exist."""

from __future__ import annotations

import datetime as dt
import secrets
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import utcnow
from mathia.errors import Forbidden, NotFound
from mathia.tenants.models import Invite, Membership, Role, Workspace
from mathia.tenants.schemas import MemberOut, MembershipOut, WorkspaceOut

_RANK = {Role.GUEST: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


async def workspace_member(
    session: AsyncSession, workspace_id: UUID, user_id: UUID, at_least: Role = Role.GUEST
) -> Membership:
    membership = await session.scalar(
        select(Membership).where(Membership.tenant_id == workspace_id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("workspace not found")
    if _RANK[Role(membership.role)] < _RANK[at_least]:
        raise Forbidden(f"this needs the {at_least.value} role or higher in the workspace")
    return membership


async def workspace_admins(session: AsyncSession, tenant_id: UUID) -> list[UUID]:
    """The workspace's owners and admins: who decides approvals and hears of moderation."""
    rows = await session.scalars(
        select(Membership.user_id).where(
            Membership.tenant_id == tenant_id, Membership.role.in_([Role.OWNER, Role.ADMIN])
        )
    )
    return list(rows)


async def create_workspace(session: AsyncSession, owner: User, name: str) -> Workspace:
    workspace = Workspace(name=name.strip(), created_by=owner.id)
    session.add(workspace)
    await session.flush()
    session.add(Membership(tenant_id=workspace.id, user_id=owner.id, role=Role.OWNER))
    await session.flush()
    return workspace


async def user_workspaces(session: AsyncSession, user_id: UUID) -> list[WorkspaceOut]:
    rows = await session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.tenant_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Workspace.created_at)
    )
    return [WorkspaceOut(id=workspace.id, name=workspace.name, role=Role(role)) for workspace, role in rows]


async def create_invite(
    session: AsyncSession, settings: Settings, workspace_id: UUID, inviter: User, role: Role
) -> Invite:
    await workspace_member(session, workspace_id, inviter.id, at_least=Role.ADMIN)
    invite = Invite(
        tenant_id=workspace_id,
        code=secrets.token_urlsafe(18),
        role=role,
        created_by=inviter.id,
        expires_at=utcnow() + dt.timedelta(seconds=settings.invite_ttl),
    )
    session.add(invite)
    await session.flush()
    return invite


async def accept_invite(session: AsyncSession, code: str, user: User) -> MembershipOut:
    """Join the invite's workspace. Someone already a member keeps the role they have."""
    invite = await session.scalar(select(Invite).where(Invite.code == code))
    if invite is None or invite.expires_at <= utcnow():
        raise NotFound("invite not found or expired")
    membership = await session.scalar(
        select(Membership).where(Membership.tenant_id == invite.tenant_id, Membership.user_id == user.id)
    )
    if membership is None:
        membership = Membership(tenant_id=invite.tenant_id, user_id=user.id, role=invite.role)
        session.add(membership)
        await session.flush()
    workspace = await session.get_one(Workspace, invite.tenant_id)
    return MembershipOut(
        workspace_id=workspace.id, user_id=user.id, role=Role(membership.role), workspace_name=workspace.name
    )


async def list_members(session: AsyncSession, workspace_id: UUID, caller: User) -> list[MemberOut]:
    await workspace_member(session, workspace_id, caller.id)
    rows = await session.execute(
        select(User.id, User.display_name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == workspace_id)
        .order_by(User.display_name)
    )
    return [MemberOut(user_id=uid, display_name=name, role=Role(role)) for uid, name, role in rows]
