from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.moderation import services
from mathia.moderation.models import FlagState
from mathia.moderation.schemas import FlagOut, MuteOut, PardonOut, PolicyIn, PolicyOut
from mathia.rooms.realtime import notify_user
from mathia.runtime import Runtime
from mathia.tenants.models import Role
from mathia.tenants.services import workspace_member


class ModerationController(Controller):
    path = "/api/workspaces/{workspace_id:uuid}/moderation"
    tags = ["moderation"]

    @get("/flags")
    async def flags(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        user_id: FromQuery[UUID | None] = None,
        flag_state: Annotated[FlagState | None, QueryParameter(name="state")] = None,
    ) -> list[FlagOut]:
        rows = await services.list_flags(
            db_session, workspace_id, current_user.id, user_id=user_id, state=flag_state
        )
        return [
            FlagOut(
                id=f.id,
                message_id=f.message_id,
                room_id=f.room_id,
                user_id=f.user_id,
                score=f.score,
                reason=f.reason,
                state=FlagState(f.state),
                created_at=f.created_at,
            )
            for f in rows
        ]

    @post("/users/{user_id:uuid}/unmute", status_code=HTTP_200_OK)
    async def unmute(
        self,
        workspace_id: FromPath[UUID],
        user_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> MuteOut:
        await services.unmute(db_session, workspace_id, current_user.id, user_id)
        await db_session.commit()
        await notify_user(runtime.redis, user_id, services.unmuted_frame(workspace_id))
        return MuteOut(user_id=user_id, muted_until=None)

    @post("/users/{user_id:uuid}/pardon", status_code=HTTP_200_OK)
    async def pardon(
        self,
        workspace_id: FromPath[UUID],
        user_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> PardonOut:
        pardoned = await services.pardon(db_session, workspace_id, current_user.id, user_id)
        await db_session.commit()
        await notify_user(runtime.redis, user_id, services.unmuted_frame(workspace_id))
        return PardonOut(user_id=user_id, muted_until=None, pardoned_flags=pardoned)

    @get("/users/{user_id:uuid}")
    async def mute_state(
        self,
        workspace_id: FromPath[UUID],
        user_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> MuteOut:
        if user_id != current_user.id:  # anyone may ask about themselves; admins about anyone
            await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.ADMIN)
        await workspace_member(db_session, workspace_id, user_id)
        return MuteOut(
            user_id=user_id, muted_until=await services.muted_until(db_session, workspace_id, user_id)
        )

    @get("/policy")
    async def get_policy(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> PolicyOut:
        await workspace_member(db_session, workspace_id, current_user.id)
        row = await services.policy(db_session, runtime.settings, workspace_id)
        return PolicyOut(flag_limit=row.flag_limit, mute_seconds=row.mute_seconds)

    @put("/policy")
    async def put_policy(
        self,
        workspace_id: FromPath[UUID],
        data: JSONBody[PolicyIn],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> PolicyOut:
        row = await services.update_policy(
            db_session,
            runtime.settings,
            workspace_id,
            current_user.id,
            flag_limit=data.flag_limit,
            mute_seconds=data.mute_seconds,
        )
        return PolicyOut(flag_limit=row.flag_limit, mute_seconds=row.mute_seconds)
