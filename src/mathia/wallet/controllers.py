from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.tenants.models import Role
from mathia.tenants.services import workspace_member
from mathia.wallet import services
from mathia.wallet.schemas import AdjustmentIn, AdjustmentOut, Statement, WalletOut


class WalletController(Controller):
    path = "/api/workspaces/{workspace_id:uuid}/wallet"
    tags = ["wallet"]

    @get()
    async def show(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> WalletOut:
        await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.MEMBER)
        account = await services.workspace_account(db_session, workspace_id)
        return WalletOut(account_id=account.id, balance=account.balance)

    @get("/statement")
    async def statement(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        before_seq: Annotated[int | None, Parameter(ge=1)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> Statement:
        await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.MEMBER)
        return await services.statement(db_session, workspace_id, before_seq, limit)

    @post("/adjustments")
    async def adjust(
        self,
        workspace_id: FromPath[UUID],
        data: JSONBody[AdjustmentIn],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> Response[AdjustmentOut]:
        await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.OWNER)
        posted, balance = await services.adjust(
            db_session, workspace_id, current_user.id, data.amount, data.reason.strip(), data.idempotency_key
        )
        body = AdjustmentOut(
            transfer_id=posted.transfer_id, amount=data.amount, balance=balance, replayed=posted.replayed
        )
        return Response(body, status_code=HTTP_200_OK if posted.replayed else HTTP_201_CREATED)
