"""Tasks: assigned to a member by the built-in `create_task` action or through the API."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions.models import Task, TaskStatus
from mathia.db import utcnow
from mathia.errors import InvalidInput, NotFound
from mathia.tenants.models import Membership


async def _require_member(session: AsyncSession, tenant_id: UUID, user_id: UUID, field: str) -> None:
    found = await session.scalar(
        select(Membership.id).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    if found is None:
        raise InvalidInput(f"{field}: not a member of this workspace")


async def create_task(
    session: AsyncSession,
    tenant_id: UUID,
    title: str,
    assignee_id: UUID,
    created_by: UUID | None,
    room_id: UUID | None = None,
) -> Task:
    title = title.strip()
    if not title:
        raise InvalidInput("title: must not be empty")
    await _require_member(session, tenant_id, assignee_id, "assignee_id")
    task = Task(
        tenant_id=tenant_id,
        title=title[:300],
        assignee_id=assignee_id,
        created_by=created_by,
        room_id=room_id,
        status=TaskStatus.OPEN,
    )
    session.add(task)
    await session.flush()
    return task


async def list_tasks(
    session: AsyncSession, tenant_id: UUID, status: TaskStatus | None = None, assignee_id: UUID | None = None
) -> list[Task]:
    query = select(Task).where(Task.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Task.status == status.value)
    if assignee_id is not None:
        query = query.where(Task.assignee_id == assignee_id)
    return list(await session.scalars(query.order_by(Task.created_at)))


async def get_task(session: AsyncSession, task_id: UUID, member_of: set[UUID]) -> Task:
    """The task, if it belongs to one of the caller's workspaces; else 404 as if it did not exist."""
    task = await session.get(Task, task_id)
    if task is None or task.tenant_id not in member_of:
        raise NotFound("no such task")
    return task


async def update_task(
    session: AsyncSession,
    task: Task,
    *,
    title: str | None,
    status: TaskStatus | None,
    assignee_id: UUID | None,
) -> Task:
    if title is not None:
        if not title.strip():
            raise InvalidInput("title: must not be empty")
        task.title = title.strip()[:300]
    if assignee_id is not None:
        await _require_member(session, task.tenant_id, assignee_id, "assignee_id")
        task.assignee_id = assignee_id
    if status is not None and status != task.status:
        task.status = status
        task.closed_at = utcnow() if status == TaskStatus.DONE else None
    await session.flush()
    return task
