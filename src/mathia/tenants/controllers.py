from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.runtime import Runtime
from mathia.tenants import services
from mathia.tenants.models import Role
from mathia.tenants.schemas import (
    InviteCreate,
    InviteOut,
    MemberOut,
    MembershipOut,
    WorkspaceCreate,
    WorkspaceOut,
)
from mathia.wallet.services import open_workspace_account


class WorkspaceController(Controller):
    path = "/api"
    tags = ["workspaces"]

    @post("/workspaces")
    async def create(
        self,
        data: JSONBody[WorkspaceCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> WorkspaceOut:
        workspace = await services.create_workspace(db_session, current_user, data.name)
        await open_workspace_account(db_session, workspace.id, runtime.settings.wallet_starting_grant)
        return WorkspaceOut(id=workspace.id, name=workspace.name, role=Role.OWNER)

    @get("/workspaces")
    async def list_mine(
        self, current_user: NamedDependency[User], db_session: NamedDependency[AsyncSession]
    ) -> list[WorkspaceOut]:
        return await services.user_workspaces(db_session, current_user.id)

    @get("/workspaces/{workspace_id:uuid}/members")
    async def members(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> list[MemberOut]:
        return await services.list_members(db_session, workspace_id, current_user)

    @post("/workspaces/{workspace_id:uuid}/invites")
    async def invite(
        self,
        workspace_id: FromPath[UUID],
        data: JSONBody[InviteCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> InviteOut:
        invite = await services.create_invite(
            db_session, runtime.settings, workspace_id, current_user, Role(data.role)
        )
        return InviteOut(
            code=invite.code, role=Role(invite.role), expires_at=invite.expires_at, workspace_id=workspace_id
        )

    @post("/invites/{code:str}/accept", status_code=HTTP_200_OK)
    async def accept(
        self,
        code: FromPath[str],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> MembershipOut:
        return await services.accept_invite(db_session, code, current_user)
