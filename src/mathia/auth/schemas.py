from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=256)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"\S")]


class RegisterBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    display_name: DisplayName


class LoginBody(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(max_length=320)]
    password: Annotated[str, msgspec.Meta(max_length=256)]


class RefreshBody(msgspec.Struct):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class UserOut(msgspec.Struct):
    id: UUID
    email: str
    display_name: str


class TokenPair(msgspec.Struct):
    user: UserOut
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
