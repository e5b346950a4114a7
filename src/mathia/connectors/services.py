"""The core side of the plugin API: per-workspace connector configuration, the workspace
facade plugins act through, the shared cache, and the process-wide connector runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import httpx
import msgspec
from redis.asyncio import Redis
from redis.exceptions import LockError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.config import Settings
from mathia.connectors import manager
from mathia.connectors.api import Connector, Member, Role
from mathia.connectors.crypto import Crypto
from mathia.connectors.models import ConnectorConfig, ConnectorUserSecret
from mathia.errors import InvalidInput, NotFound
from mathia.tenants.models import Membership
from mathia.wallet.models import CREDIT_UNITS
from mathia.wallet.services import credit_top_up

log = logging.getLogger(__name__)


class Delivery(Protocol):
    """How connector results reach people; the app supplies one backed by the WebSocket gateway."""

    async def notify(self, user_ids: Sequence[UUID], frame: Mapping[str, Any]) -> None: ...

    async def post_message(
        self, session: AsyncSession, tenant_id: UUID, room_id: UUID, body: str
    ) -> None: ...


@dataclass
class ConnectorRuntime:
    """What a process needs to run connectors; built once at start-up."""

    settings: Settings
    registry: manager.Registry
    redis: Redis
    http: httpx.AsyncClient
    crypto: Crypto
    delivery: Delivery

    async def start(self) -> None:
        """Run the plugins' start-up tasks; one that fails is logged and the rest still run."""
        for task in self.registry.startup:
            try:
                await task()
            except Exception as exc:
                log.error("a plugin start-up task %r failed: %s: %s", task, type(exc).__name__, exc)


def build_runtime(
    settings: Settings, redis: Redis, http: httpx.AsyncClient, delivery: Delivery
) -> ConnectorRuntime:
    from mathia.actions import builtin  # the core's own connectors, registered like any plugin

    allowed = (
        [n.strip() for n in settings.plugins.split(",") if n.strip()]
        if settings.plugins is not None
        else None
    )
    registry = manager.load(allowed, builtins=[("builtin", builtin)])
    return ConnectorRuntime(settings, registry, redis, http, Crypto.from_settings(settings), delivery)


class RedisCache:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def get(self, key: str) -> Any | None:
        raw = await self._redis.get(self._prefix + key)
        return None if raw is None else msgspec.json.decode(raw)

    async def set(self, key: str, value: Any, ttl: int) -> None:
        await self._redis.set(self._prefix + key, msgspec.json.encode(value), ex=max(1, ttl))

    @asynccontextmanager
    async def lock(self, key: str, ttl: int) -> AsyncIterator[None]:
        lock = self._redis.lock(f"{self._prefix}lock:{key}", timeout=ttl, blocking_timeout=ttl)
        if not await lock.acquire():
            raise TimeoutError(f"{key!r} stayed locked for {ttl} s")
        try:
            yield
        finally:
            with suppress(LockError):  # held past its timeout: it is someone else's now
                await lock.release()


def cache_for(runtime: ConnectorRuntime, connector: str, tenant_id: UUID) -> RedisCache:
    return RedisCache(runtime.redis, f"mathia:cache:{connector}:{tenant_id}:")


class WorkspaceFacade:
    """The `Workspace` a plugin sees: one workspace, one connector, one database session."""

    def __init__(
        self, runtime: ConnectorRuntime, session: AsyncSession, tenant_id: UUID, connector: str
    ) -> None:
        self.id = tenant_id
        self._runtime = runtime
        self._session = session
        self._connector = connector

    async def members(self, role: Role | None = None) -> list[Member]:
        query = (
            select(Membership.user_id, User.display_name, Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == self.id)
        )
        if role is not None:
            query = query.where(Membership.role == role.value)
        rows = await self._session.execute(query.order_by(User.display_name))
        return [Member(user_id, name, Role(str(member_role))) for user_id, name, member_role in rows]

    async def notify(self, user_ids: Sequence[UUID], kind: str, data: Mapping[str, Any]) -> None:
        members = {m.user_id for m in await self.members()}
        targets = [u for u in user_ids if u in members]  # never outside the workspace
        frame = {**data, "type": "notification", "kind": kind, "workspace_id": str(self.id)}
        await self._runtime.delivery.notify(targets, frame)

    async def post_message(self, room_id: UUID, body: str) -> None:
        await self._runtime.delivery.post_message(self._session, self.id, room_id, body)

    async def credit_top_up(self, provider: str, provider_payment_id: str, credits: int) -> bool:
        units = credits * CREDIT_UNITS
        return await credit_top_up(self._session, self.id, provider, provider_payment_id, units)

    async def create_task(
        self, title: str, assignee_id: UUID, created_by: UUID | None, room_id: UUID | None = None
    ) -> UUID:
        from mathia.actions.tasks import create_task

        task = await create_task(self._session, self.id, title, assignee_id, created_by, room_id)
        return task.id

    async def get_user_secret(self, user_id: UUID) -> dict[str, Any] | None:
        row = await self._user_secret(user_id)
        return None if row is None else self._runtime.crypto.decrypt(row.secret)

    async def set_user_secret(self, user_id: UUID, value: Mapping[str, Any] | None) -> None:
        row = await self._user_secret(user_id)
        if value is None:
            if row is not None:
                await self._session.delete(row)
        elif row is None:
            self._session.add(
                ConnectorUserSecret(
                    tenant_id=self.id,
                    connector=self._connector,
                    user_id=user_id,
                    secret=self._runtime.crypto.encrypt(value),
                )
            )
        else:
            row.secret = self._runtime.crypto.encrypt(value)
        await self._session.flush()

    async def update_settings(self, values: Mapping[str, str]) -> None:
        config = await get_config(self._session, self.id, self._connector)
        if config is None:
            config = ConnectorConfig(tenant_id=self.id, connector=self._connector, settings={})
            self._session.add(config)
        config.settings = {**config.settings, **values}
        await self._session.flush()

    async def _user_secret(self, user_id: UUID) -> ConnectorUserSecret | None:
        return await self._session.scalar(
            select(ConnectorUserSecret).where(
                ConnectorUserSecret.tenant_id == self.id,
                ConnectorUserSecret.connector == self._connector,
                ConnectorUserSecret.user_id == user_id,
            )
        )


async def get_config(session: AsyncSession, tenant_id: UUID, connector: str) -> ConnectorConfig | None:
    return await session.scalar(
        select(ConnectorConfig).where(
            ConnectorConfig.tenant_id == tenant_id, ConnectorConfig.connector == connector
        )
    )


def always_enabled(connector: str) -> bool:
    return connector == "builtin"


async def enabled_connectors(
    runtime: ConnectorRuntime, session: AsyncSession, tenant_id: UUID
) -> list[Connector]:
    rows = await session.scalars(
        select(ConnectorConfig.connector).where(
            ConnectorConfig.tenant_id == tenant_id, ConnectorConfig.enabled
        )
    )
    names = set(rows)
    return [c for name, c in runtime.registry.connectors.items() if name in names or always_enabled(name)]


def secrets_and_settings(
    runtime: ConnectorRuntime, config: ConnectorConfig | None, connector: Connector
) -> tuple[dict[str, str], dict[str, str]]:
    """The decrypted credentials and the settings with their defaults filled in."""
    credentials = runtime.crypto.decrypt(config.credentials) if config and config.credentials else {}
    settings = {f.name: f.default for f in connector.settings if f.default is not None}
    settings.update(config.settings if config else {})
    return credentials, settings


async def configure(
    runtime: ConnectorRuntime,
    session: AsyncSession,
    tenant_id: UUID,
    name: str,
    *,
    enabled: bool | None = None,
    credentials: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
) -> ConnectorConfig:
    """Enable or disable a connector and merge in credentials and settings; bad input changes nothing."""
    connector = runtime.registry.connectors.get(name)
    if connector is None or always_enabled(name):
        raise NotFound(f"no installed connector is called {name!r}")
    _check_fields("credentials", credentials, {f.name for f in connector.credentials})
    _check_fields("settings", settings, {f.name for f in connector.settings})
    config = await get_config(session, tenant_id, name)
    stored, current = secrets_and_settings(runtime, config, connector)
    stored.update(credentials or {})
    current.update(settings or {})
    is_enabled = enabled if enabled is not None else bool(config and config.enabled)
    if is_enabled:
        missing = [f.name for f in connector.credentials if f.required and not stored.get(f.name)]
        missing += [f.name for f in connector.settings if f.required and not current.get(f.name)]
        if missing:
            raise InvalidInput(f"cannot enable {name}: missing {', '.join(missing)}", fields=missing)
    if config is None:
        config = ConnectorConfig(tenant_id=tenant_id, connector=name, settings={})
        session.add(config)
    config.enabled = is_enabled
    config.credentials = runtime.crypto.encrypt(stored) if stored else None
    config.settings = {**config.settings, **(settings or {})}
    await session.flush()
    return config


def _check_fields(kind: str, given: Mapping[str, str] | None, known: set[str]) -> None:
    unknown = sorted(set(given or {}) - known)
    if unknown:
        raise InvalidInput(f"{kind}: unknown field {', '.join(unknown)}; expected one of {sorted(known)}")
    bad = sorted(k for k, v in (given or {}).items() if not isinstance(v, str))
    if bad:
        raise InvalidInput(f"{kind}: {', '.join(bad)} must be a string")


async def rotate_credentials(session: AsyncSession, crypto: Crypto) -> int:
    """Re-encrypt every stored secret with the newest key; answers how many were rewritten."""
    count = 0
    for config in await session.scalars(
        select(ConnectorConfig).where(ConnectorConfig.credentials.is_not(None))
    ):
        config.credentials = crypto.rotate(config.credentials or "")
        count += 1
    for secret in await session.scalars(select(ConnectorUserSecret)):
        secret.secret = crypto.rotate(secret.secret)
        count += 1
    await session.flush()
    return count
