"""Accounts, passwords (argon2), access tokens (short-lived JWT) and refresh
tokens (opaque, rotated, with reuse detection per family)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import jwt
import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from litestar.exceptions import NotAuthorizedException
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import RefreshToken, User
from mathia.config import Settings
from mathia.db import utcnow
from mathia.errors import Conflict

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both failures take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
_ALGORITHM = "HS256"
BAD_CREDENTIALS = "wrong email or password"


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def register(session: AsyncSession, email: str, password: str, display_name: str) -> User:
    # argon2 is deliberately slow: hash off the event loop, or every socket of the process waits.
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    user = User(email=normalise_email(email), display_name=display_name.strip(), password_hash=password_hash)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User | None:
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    try:
        await asyncio.to_thread(_hasher.verify, user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def issue_access_token(settings: Settings, user_id: uuid.UUID) -> str:
    now = utcnow()
    claims = {
        "sub": str(user_id),
        "typ": "access",
        "iat": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=_ALGORITHM)


class AccessToken(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    expires_at: float  # Unix time


def read_access_token(settings: Settings, token: str) -> AccessToken:
    """A valid access token's claims; 401 for anything else (expired, forged, a refresh token)."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.secret_key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub", "typ"]}
        )
        if claims["typ"] != "access":
            raise jwt.InvalidTokenError("not an access token")
        return AccessToken(uuid.UUID(claims["sub"]), float(claims["exp"]))
    except (jwt.InvalidTokenError, ValueError):
        raise NotAuthorizedException("invalid or expired access token") from None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_refresh_token(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID | None = None
) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id or uuid.uuid4(),
            token_hash=_digest(token),
            expires_at=utcnow() + dt.timedelta(seconds=settings.refresh_token_ttl),
        )
    )
    await session.flush()
    return token


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def rotate_refresh_token(session: AsyncSession, settings: Settings, token: str) -> tuple[User, str]:
    """Spend `token` and issue its successor. Presenting a spent token revokes the whole family:
    either the owner or a thief holds a newer one, and we cannot tell which."""
    invalid = NotAuthorizedException("invalid or expired refresh token")
    stored = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(token)).with_for_update()
    )
    if stored is None or stored.revoked_at is not None or stored.expires_at <= utcnow():
        raise invalid
    if stored.spent_at is not None:
        await revoke_family(session, stored.family_id)
        await session.commit()  # the revocation must outlive the 401
        raise invalid
    stored.spent_at = utcnow()
    user = await session.get_one(User, stored.user_id)
    return user, await issue_refresh_token(session, settings, user.id, stored.family_id)


async def logout(session: AsyncSession, token: str) -> None:
    stored = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _digest(token)))
    if stored is not None:
        await revoke_family(session, stored.family_id)
