"""The types a plugin builds and receives. Everything here is part of the stable facade."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import httpx
import msgspec


class Role(enum.StrEnum):
    """Workspace roles, lowest first (same values as the core's roles)."""

    GUEST = "guest"
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class ActionError(Exception):
    """A failure the user should read as is ("city not found"); anything else is reported as a fault."""


@dataclass(frozen=True)
class Field:
    """One credential (secret, encrypted at rest) or setting (plain) a workspace fills in."""

    name: str
    description: str
    required: bool = True
    default: str | None = None


@dataclass(frozen=True)
class ActionResult:
    """What an action answers: `text` for people and the assistant, `data` for programs."""

    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


ActionHandler = Callable[["ActionContext", Any], Awaitable[ActionResult]]


@dataclass(frozen=True)
class Action:
    """One thing a connector can do. `params` is a msgspec Struct: it is the tool's JSON schema
    and every call is validated against it before `handler` runs."""

    name: str
    description: str
    params: type[msgspec.Struct]
    handler: ActionHandler
    min_role: Role = Role.MEMBER
    # An owner or admin approves it before it runs (payments, messages to outside numbers).
    needs_approval: bool = False
    # Seconds an answer may be reused for the same parameters in the same workspace; 0 = never.
    cache_ttl: int = 0
    timeout: float = 15.0
    # Regular expressions for the offline assistant; named groups become parameters.
    phrases: tuple[str, ...] = ()


@runtime_checkable
class Connector(Protocol):
    """What `mathia_connectors` returns. Any object with these attributes will do."""

    name: str  # lowercase letters, digits and dashes; unique across plugins
    version: str
    description: str
    actions: Sequence[Action]
    credentials: Sequence[Field]  # per workspace, encrypted at rest, never shown back
    settings: Sequence[Field]  # per workspace, plain
    permissions: Sequence[str]  # what it asks for, shown to admins before they enable it


@dataclass(frozen=True)
class Member:
    user_id: UUID
    display_name: str
    role: Role


class Cache(Protocol):
    """A small JSON cache shared by every process, namespaced per connector and workspace."""

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, ttl: int) -> None: ...

    def lock(self, key: str, ttl: int) -> AbstractAsyncContextManager[None]:
        """`async with cache.lock(key, ttl):` runs one holder of `key` at a time across every
        process. A holder is let go after `ttl` seconds (one that died frees it then), and
        waiting longer than that for it raises TimeoutError."""
        ...


class Workspace(Protocol):
    """The workspace an action or a webhook works for, and what a plugin may do to it."""

    id: UUID

    async def members(self, role: Role | None = None) -> list[Member]: ...

    async def notify(self, user_ids: Sequence[UUID], kind: str, data: Mapping[str, Any]) -> None:
        """Send a `notification` frame (of this `kind`) to these members' open sockets."""

    async def post_message(self, room_id: UUID, body: str) -> None:
        """Post a system message into one of the workspace's rooms."""

    async def credit_top_up(self, provider: str, provider_payment_id: str, credits: int) -> bool:
        """Credit the wallet with whole credits for a verified payment; True the first time,
        False for a payment already credited."""

    async def create_task(
        self, title: str, assignee_id: UUID, created_by: UUID | None, room_id: UUID | None = None
    ) -> UUID:
        """Assign a task to a member; it shows in the workspace's task list."""

    async def get_user_secret(self, user_id: UUID) -> dict[str, Any] | None:
        """This connector's per-user secrets (OAuth tokens), decrypted."""

    async def set_user_secret(self, user_id: UUID, value: Mapping[str, Any] | None) -> None: ...

    async def update_settings(self, values: Mapping[str, str]) -> None:
        """Merge values into this connector's plain settings for the workspace."""


@dataclass(frozen=True)
class ActionContext:
    """Handed to an action's handler: who asks, where, and the tools to do it with."""

    connector: str
    workspace: Workspace
    user_id: UUID
    role: Role
    room_id: UUID | None
    credentials: Mapping[str, str]
    settings: Mapping[str, str]
    http: httpx.AsyncClient  # shared; set your own per-request timeout if the default 10 s does not fit
    cache: Cache
    # Unique per call (the approval's id once approved): use it as the provider's idempotency key.
    call_id: str


@dataclass(frozen=True)
class HookRequest:
    """An HTTP request to a plugin route, already matched to a workspace."""

    method: str
    path: str  # the part after /hooks/{connector}/{workspace_id}
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    connector: str
    workspace: Workspace
    credentials: Mapping[str, str]
    settings: Mapping[str, str]
    http: httpx.AsyncClient
    cache: Cache


@dataclass(frozen=True)
class HookResponse:
    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """An HTTP route served at /hooks/{connector}/{workspace_id}{path} without a login:
    webhooks and OAuth callbacks. The handler must authenticate the caller itself."""

    connector: str
    path: str
    handler: Callable[[HookRequest], Awaitable[HookResponse]]
    methods: tuple[str, ...] = ("POST",)


@dataclass(frozen=True)
class Job:
    """Background work run by `mathia worker`: every `every` seconds, or when enqueued by name."""

    name: str
    function: Callable[[], Awaitable[None]]
    every: int | None = None
    timeout: int = 60  # seconds; the worker abandons a run that takes longer


StartupTask = Callable[[], Awaitable[None]]
