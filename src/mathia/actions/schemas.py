from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

import msgspec

from mathia.actions.models import ActionAudit, Approval, Task, TaskStatus
from mathia.actions.router import Outcome, mask


class ApprovalOut(msgspec.Struct):
    id: UUID
    workspace_id: UUID
    requested_by: UUID
    room_id: UUID | None
    connector: str
    action: str
    summary: str
    params: dict[str, Any]
    status: str
    expires_at: dt.datetime
    decided_by: UUID | None
    result: str | None
    created_at: dt.datetime


def approval_out(approval: Approval) -> ApprovalOut:
    return ApprovalOut(
        id=approval.id,
        workspace_id=approval.tenant_id,
        requested_by=approval.user_id,
        room_id=approval.room_id,
        connector=approval.connector,
        action=approval.action,
        summary=approval.summary,
        params=mask(approval.params, []),
        status=str(approval.status),
        expires_at=approval.expires_at,
        decided_by=approval.decided_by,
        result=approval.result,
        created_at=approval.created_at,
    )


class DecisionOut(msgspec.Struct):
    approval: ApprovalOut
    outcome: Outcome | None


class ActionCall(msgspec.Struct, forbid_unknown_fields=True):
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    room_id: UUID | None = None


class TaskCreate(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    assignee_id: UUID
    room_id: UUID | None = None


class TaskUpdate(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)] | None = None
    status: TaskStatus | None = None
    assignee_id: UUID | None = None


class TaskOut(msgspec.Struct):
    id: UUID
    workspace_id: UUID
    title: str
    assignee_id: UUID
    created_by: UUID | None
    room_id: UUID | None
    status: str
    created_at: dt.datetime
    closed_at: dt.datetime | None


def task_out(task: Task) -> TaskOut:
    return TaskOut(
        id=task.id,
        workspace_id=task.tenant_id,
        title=task.title,
        assignee_id=task.assignee_id,
        created_by=task.created_by,
        room_id=task.room_id,
        status=str(task.status),
        created_at=task.created_at,
        closed_at=task.closed_at,
    )


class AuditOut(msgspec.Struct):
    id: UUID
    user_id: UUID | None
    connector: str
    action: str
    params: dict[str, Any]
    outcome: str
    detail: str
    duration_ms: int
    approval_id: UUID | None
    created_at: dt.datetime


def audit_out(row: ActionAudit) -> AuditOut:
    return AuditOut(
        id=row.id,
        user_id=row.user_id,
        connector=row.connector,
        action=row.action,
        params=row.params,
        outcome=row.outcome,
        detail=row.detail,
        duration_ms=row.duration_ms,
        approval_id=row.approval_id,
        created_at=row.created_at,
    )
