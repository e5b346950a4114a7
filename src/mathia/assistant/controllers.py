from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.schemas import UsageReport
from mathia.assistant.services import usage_report
from mathia.auth.models import User
from mathia.tenants.models import Role
from mathia.tenants.services import workspace_member

Day = dt.date | None


class UsageController(Controller):
    path = "/api"
    tags = ["assistant"]

    @get("/workspaces/{workspace_id:uuid}/usage")
    async def usage(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        start: Annotated[Day, QueryParameter(name="from", description="first UTC day, YYYY-MM-DD")] = None,
        end: Annotated[Day, QueryParameter(name="to", description="last UTC day, YYYY-MM-DD")] = None,
    ) -> UsageReport:
        """AI usage per UTC day and user; workspace owners and admins only."""
        await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.ADMIN)
        return await usage_report(db_session, workspace_id, start=start, end=end)
