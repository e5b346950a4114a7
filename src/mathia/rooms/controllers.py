from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.rooms import services
from mathia.rooms.schemas import AddMember, MessageCreate, MessageOut, MessagePage, RoomCreate, RoomOut
from mathia.runtime import Runtime


class RoomController(Controller):
    path = "/api"
    tags = ["rooms"]

    @post("/workspaces/{workspace_id:uuid}/rooms")
    async def create(
        self,
        workspace_id: FromPath[UUID],
        data: JSONBody[RoomCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> RoomOut:
        room = await services.create_room(db_session, workspace_id, current_user, data.name, data.private)
        return services.room_out(room, member=True)

    @get("/workspaces/{workspace_id:uuid}/rooms")
    async def list_visible(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> list[RoomOut]:
        return await services.list_rooms(db_session, workspace_id, current_user)

    @post("/rooms/{room_id:uuid}/join", status_code=HTTP_200_OK)
    async def join(
        self,
        room_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> RoomOut:
        return services.room_out(await services.join_room(db_session, room_id, current_user), member=True)

    @post("/rooms/{room_id:uuid}/members")
    async def add_member(
        self,
        room_id: FromPath[UUID],
        data: JSONBody[AddMember],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> RoomOut:
        room = await services.add_member(db_session, room_id, current_user, data.user_id)
        return services.room_out(room, member=True)

    @get("/rooms/{room_id:uuid}/messages")
    async def messages(
        self,
        room_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        before: Annotated[int | None, Parameter(ge=0)] = None,
        after: Annotated[int | None, Parameter(ge=0)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> MessagePage:
        room, _ = await services.visible_room(db_session, room_id, current_user.id)
        return await services.messages_page(db_session, room.id, before=before, after=after, limit=limit)

    @post("/rooms/{room_id:uuid}/messages")
    async def send(
        self,
        room_id: FromPath[UUID],
        data: JSONBody[MessageCreate],
        current_user: NamedDependency[User],
        runtime: NamedDependency[Runtime],
    ) -> MessageOut:
        return await services.send_user_message(runtime, current_user, room_id, data.body, data.client_id)
