from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from mathia import ratelimit
from mathia.auth import services
from mathia.auth.models import User
from mathia.auth.schemas import LoginBody, RefreshBody, RegisterBody, TokenPair, UserOut
from mathia.errors import RateLimited
from mathia.runtime import Runtime
from mathia.tenants.schemas import MeOut
from mathia.tenants.services import user_workspaces


async def _token_pair(
    session: AsyncSession, runtime: NamedDependency[Runtime], user: User, refresh_token: str | None = None
) -> TokenPair:
    return TokenPair(
        user=UserOut(id=user.id, email=user.email, display_name=user.display_name),
        access_token=services.issue_access_token(runtime.settings, user.id),
        refresh_token=refresh_token or await services.issue_refresh_token(session, runtime.settings, user.id),
        expires_in=runtime.settings.access_token_ttl,
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/register")
    async def register(
        self,
        data: JSONBody[RegisterBody],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> TokenPair:
        user = await services.register(db_session, data.email, data.password, data.display_name)
        return await _token_pair(db_session, runtime, user)

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self,
        data: JSONBody[LoginBody],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> TokenPair:
        settings = runtime.settings
        limits = (
            (f"login:account:{services.normalise_email(data.email)}", settings.login_attempts_per_account),
            (f"login:ip:{ratelimit.client_address(request)}", settings.login_attempts_per_ip),
        )
        for key, limit in limits:
            if wait := await ratelimit.exhausted(runtime.redis, key, limit):
                raise RateLimited("too many failed login attempts; try again later", wait)
        user = await services.authenticate(db_session, data.email, data.password)
        if user is None:
            for key, limit in limits:
                await ratelimit.hit(runtime.redis, key, limit, settings.login_attempts_window)
            raise NotAuthorizedException(services.BAD_CREDENTIALS)
        return await _token_pair(db_session, runtime, user)

    @post("/refresh", status_code=HTTP_200_OK)
    async def refresh(
        self,
        data: JSONBody[RefreshBody],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> TokenPair:
        user, refresh_token = await services.rotate_refresh_token(
            db_session, runtime.settings, data.refresh_token
        )
        return await _token_pair(db_session, runtime, user, refresh_token)

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, data: JSONBody[RefreshBody], db_session: NamedDependency[AsyncSession]) -> None:
        await services.logout(db_session, data.refresh_token)


@get("/api/me", tags=["auth"])
async def me(current_user: NamedDependency[User], db_session: NamedDependency[AsyncSession]) -> MeOut:
    return MeOut(
        id=current_user.id,
        email=current_user.email,
        display_name=current_user.display_name,
        workspaces=await user_workspaces(db_session, current_user.id),
    )
