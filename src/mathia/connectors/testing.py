"""Helpers for testing a plugin without a server, a database or Redis.

registry = load_plugin(my_plugin_module)           # registers it as the server would
workspace = FakeWorkspace()
with serve(fake_provider_app()) as base_url:        # the provider, on loopback
    async with httpx.AsyncClient() as http:
        ctx = make_context(connector, workspace, http, credentials={...}, settings={"base_url": base_url})
        result = await call(action, ctx, {"city": "Nairobi"})
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import msgspec
import uvicorn

from mathia.connectors import manager
from mathia.connectors.api import (
    Action,
    ActionContext,
    ActionResult,
    Connector,
    HookRequest,
    HookResponse,
    Member,
    Role,
)


@contextmanager
def serve(
    app: Any, *, startup_timeout: float = 10.0, shutdown_grace: int = 1, **options: Any
) -> Iterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (a free port) in a background thread, with its
    own event loop; yield its base URL without a trailing slash.

    `shutdown_grace` bounds how long exiting waits for open responses (a stalled stream would
    otherwise hold the thread); `options` go to uvicorn.Config as they are."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=shutdown_grace,
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="loopback-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=shutdown_grace + 5)


def load_plugin(plugin: object, name: str = "plugin-under-test") -> manager.Registry:
    """Register one plugin exactly as the server does; raise if the server would skip it."""
    registry = manager.load(builtins=[(name, plugin)], eps=[])
    if registry.failures:
        raise AssertionError(f"the plugin would be skipped: {registry.failures[name]}")
    return registry


class MemoryCache:
    def __init__(self) -> None:
        self.values: dict[str, tuple[Any, float]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> Any | None:
        value, expires = self.values.get(key, (None, 0.0))
        return value if time.monotonic() < expires else None

    async def set(self, key: str, value: Any, ttl: int) -> None:
        self.values[key] = (msgspec.json.decode(msgspec.json.encode(value)), time.monotonic() + ttl)

    @asynccontextmanager
    async def lock(self, key: str, ttl: int) -> AsyncIterator[None]:
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with asyncio.timeout(ttl):
            await lock.acquire()
        try:
            yield
        finally:
            lock.release()


@dataclass
class FakeWorkspace:
    """An in-memory `Workspace` that records what the plugin did to it."""

    id: UUID = field(default_factory=uuid.uuid4)
    member_list: list[Member] = field(default_factory=list)
    notifications: list[tuple[list[UUID], str, dict[str, Any]]] = field(default_factory=list)
    messages: list[tuple[UUID, str]] = field(default_factory=list)
    credited: dict[tuple[str, str], int] = field(default_factory=dict)
    user_secrets: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    tasks: list[tuple[str, UUID]] = field(default_factory=list)

    async def members(self, role: Role | None = None) -> list[Member]:
        return [m for m in self.member_list if role is None or m.role == role]

    async def notify(self, user_ids: Sequence[UUID], kind: str, data: Mapping[str, Any]) -> None:
        self.notifications.append((list(user_ids), kind, dict(data)))

    async def post_message(self, room_id: UUID, body: str) -> None:
        self.messages.append((room_id, body))

    async def credit_top_up(self, provider: str, provider_payment_id: str, credits: int) -> bool:
        if (provider, provider_payment_id) in self.credited:
            return False
        self.credited[(provider, provider_payment_id)] = credits
        return True

    async def create_task(
        self, title: str, assignee_id: UUID, created_by: UUID | None, room_id: UUID | None = None
    ) -> UUID:
        self.tasks.append((title, assignee_id))
        return uuid.uuid4()

    async def get_user_secret(self, user_id: UUID) -> dict[str, Any] | None:
        return self.user_secrets.get(user_id)

    async def set_user_secret(self, user_id: UUID, value: Mapping[str, Any] | None) -> None:
        if value is None:
            self.user_secrets.pop(user_id, None)
        else:
            self.user_secrets[user_id] = dict(value)

    async def update_settings(self, values: Mapping[str, str]) -> None:
        self.settings.update(values)


def _defaults(connector: Connector, settings: Mapping[str, str]) -> dict[str, str]:
    return {**{f.name: f.default for f in connector.settings if f.default is not None}, **settings}


def make_context(
    connector: Connector,
    workspace: FakeWorkspace,
    http: httpx.AsyncClient,
    *,
    credentials: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    user_id: UUID | None = None,
    role: Role = Role.MEMBER,
    room_id: UUID | None = None,
    cache: MemoryCache | None = None,
    call_id: str | None = None,
) -> ActionContext:
    """An action context as the router builds it, with the connector's setting defaults filled in."""
    return ActionContext(
        connector=connector.name,
        workspace=workspace,
        user_id=user_id or uuid.uuid4(),
        role=role,
        room_id=room_id,
        credentials=dict(credentials or {}),
        settings=_defaults(connector, {**workspace.settings, **(settings or {})}),
        http=http,
        cache=cache or MemoryCache(),
        call_id=call_id or uuid.uuid4().hex,
    )


async def call(action: Action, ctx: ActionContext, arguments: Mapping[str, Any]) -> ActionResult:
    """Validate the arguments against the action's schema, as the router does, then run it."""
    return await action.handler(ctx, msgspec.convert(dict(arguments), action.params, strict=False))


def make_hook_request(
    connector: Connector,
    workspace: FakeWorkspace,
    http: httpx.AsyncClient,
    *,
    path: str,
    body: bytes = b"",
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    credentials: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    cache: MemoryCache | None = None,
) -> HookRequest:
    return HookRequest(
        method=method,
        path=path,
        query=dict(query or {}),
        headers={k.lower(): v for k, v in (headers or {}).items()},
        body=body,
        connector=connector.name,
        workspace=workspace,
        credentials=dict(credentials or {}),
        settings=_defaults(connector, {**workspace.settings, **(settings or {})}),
        http=http,
        cache=cache or MemoryCache(),
    )


__all__ = [
    "FakeWorkspace",
    "HookResponse",
    "MemoryCache",
    "call",
    "load_plugin",
    "make_context",
    "make_hook_request",
    "serve",
]
