"""Resolving the caller: every /api handler that names `current_user` gets the
user of a valid `Authorization: Bearer` access token, or the request answers 401."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.auth.services import AccessToken, read_access_token
from mathia.runtime import Runtime


async def token_user(session: AsyncSession, token: AccessToken) -> User:
    user = await session.get(User, token.user_id)
    if user is None:
        raise NotAuthorizedException("invalid or expired access token")
    return user


async def provide_current_user(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    runtime: NamedDependency[Runtime],
) -> User:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException("missing bearer token")
    return await token_user(db_session, read_access_token(runtime.settings, token.strip()))
