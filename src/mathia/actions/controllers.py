"""Approvals, tasks, and calling an action directly (what the assistant does for a tool call)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions import router, tasks
from mathia.actions.models import ActionAudit, ApprovalStatus, TaskStatus
from mathia.actions.schemas import (
    ActionCall,
    ApprovalOut,
    AuditOut,
    DecisionOut,
    TaskCreate,
    TaskOut,
    TaskUpdate,
    approval_out,
    audit_out,
    task_out,
)
from mathia.auth.models import User
from mathia.connectors.api import Role
from mathia.connectors.services import ConnectorRuntime
from mathia.errors import Forbidden
from mathia.tenants.models import Membership
from mathia.tenants.models import Role as TenantRole
from mathia.tenants.services import workspace_member


class ActionController(Controller):
    path = "/api"
    tags = ["actions"]

    @post("/workspaces/{workspace_id:uuid}/actions/{tool:str}", status_code=HTTP_200_OK)
    async def call(
        self,
        workspace_id: FromPath[UUID],
        tool: FromPath[str],
        data: JSONBody[ActionCall],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
    ) -> router.Outcome:
        await workspace_member(db_session, workspace_id, current_user.id)
        return await router.run_action(
            connectors,
            db_session,
            tenant_id=workspace_id,
            user_id=current_user.id,
            room_id=data.room_id,
            tool=tool,
            arguments=data.arguments,
        )

    @get("/workspaces/{workspace_id:uuid}/audit")
    async def audit(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> list[AuditOut]:
        """The newest actions first; owners and admins only."""
        await workspace_member(db_session, workspace_id, current_user.id, at_least=TenantRole.ADMIN)
        rows = await db_session.scalars(
            select(ActionAudit)
            .where(ActionAudit.tenant_id == workspace_id)
            .order_by(ActionAudit.created_at.desc())
            .limit(limit)
        )
        return [audit_out(r) for r in rows]

    @get("/workspaces/{workspace_id:uuid}/approvals")
    async def approvals(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
        status: FromQuery[ApprovalStatus | None] = ApprovalStatus.PENDING,
    ) -> list[ApprovalOut]:
        membership = await workspace_member(db_session, workspace_id, current_user.id)
        found = await router.list_approvals(
            db_session, connectors.redis, workspace_id, current_user.id, Role(str(membership.role)), status
        )
        return [approval_out(a) for a in found]

    @post("/approvals/{approval_id:uuid}/approve", status_code=HTTP_200_OK)
    async def approve(
        self,
        approval_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
    ) -> DecisionOut:
        approval, outcome = await router.decide(connectors, db_session, approval_id, current_user.id, True)
        return DecisionOut(approval_out(approval), outcome)

    @post("/approvals/{approval_id:uuid}/reject", status_code=HTTP_200_OK)
    async def reject(
        self,
        approval_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
    ) -> DecisionOut:
        approval, outcome = await router.decide(connectors, db_session, approval_id, current_user.id, False)
        return DecisionOut(approval_out(approval), outcome)

    @get("/workspaces/{workspace_id:uuid}/tasks")
    async def list_tasks(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[TaskStatus | None] = None,
        assignee_id: FromQuery[UUID | None] = None,
    ) -> list[TaskOut]:
        await workspace_member(db_session, workspace_id, current_user.id)
        return [task_out(t) for t in await tasks.list_tasks(db_session, workspace_id, status, assignee_id)]

    @post("/workspaces/{workspace_id:uuid}/tasks")
    async def create_task(
        self,
        workspace_id: FromPath[UUID],
        data: JSONBody[TaskCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> TaskOut:
        await workspace_member(db_session, workspace_id, current_user.id, at_least=TenantRole.MEMBER)
        task = await tasks.create_task(
            db_session, workspace_id, data.title, data.assignee_id, current_user.id, data.room_id
        )
        return task_out(task)

    @patch("/tasks/{task_id:uuid}")
    async def update_task(
        self,
        task_id: FromPath[UUID],
        data: JSONBody[TaskUpdate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> TaskOut:
        memberships = {
            m.tenant_id: Role(str(m.role))
            for m in await db_session.scalars(select(Membership).where(Membership.user_id == current_user.id))
        }
        task = await tasks.get_task(db_session, task_id, set(memberships))
        role = memberships[task.tenant_id]
        if current_user.id not in (task.assignee_id, task.created_by) and role.rank < Role.ADMIN.rank:
            raise Forbidden("only the assignee, the creator or an admin can change a task")
        task = await tasks.update_task(
            db_session, task, title=data.title, status=data.status, assignee_id=data.assignee_id
        )
        return task_out(task)
