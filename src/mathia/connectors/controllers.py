"""Installed plugins, each workspace's connectors, and the plugins' own HTTP routes."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, put, route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia import ratelimit
from mathia.actions.router import mask
from mathia.auth.models import User
from mathia.connectors.api import HookRequest
from mathia.connectors.models import ConnectorConfig
from mathia.connectors.schemas import (
    ConnectorUpdate,
    PluginOut,
    WorkspaceConnectorOut,
    connector_out,
)
from mathia.connectors.services import (
    ConnectorRuntime,
    WorkspaceFacade,
    always_enabled,
    cache_for,
    configure,
    get_config,
    secrets_and_settings,
)
from mathia.errors import NotFound, RateLimited
from mathia.tenants.models import Role, Workspace
from mathia.tenants.services import workspace_member

log = logging.getLogger(__name__)


class ConnectorController(Controller):
    path = "/api"
    tags = ["connectors"]

    @get("/plugins")
    async def plugins(
        self, current_user: NamedDependency[User], connectors: NamedDependency[ConnectorRuntime]
    ) -> list[PluginOut]:
        registry = connectors.registry
        return [
            PluginOut(p.name, p.version, [connector_out(registry.connectors[c]) for c in p.connectors])
            for p in registry.plugins.values()
        ]

    @get("/workspaces/{workspace_id:uuid}/connectors")
    async def list_connectors(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
    ) -> list[WorkspaceConnectorOut]:
        await workspace_member(db_session, workspace_id, current_user.id)
        configs = {
            c.connector: c
            for c in await db_session.scalars(
                select(ConnectorConfig).where(ConnectorConfig.tenant_id == workspace_id)
            )
        }
        return [
            _workspace_connector_out(connectors, name, configs.get(name))
            for name in connectors.registry.connectors
        ]

    @put("/workspaces/{workspace_id:uuid}/connectors/{name:str}")
    async def update_connector(
        self,
        workspace_id: FromPath[UUID],
        name: FromPath[str],
        data: JSONBody[ConnectorUpdate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        connectors: NamedDependency[ConnectorRuntime],
    ) -> WorkspaceConnectorOut:
        await workspace_member(db_session, workspace_id, current_user.id, at_least=Role.ADMIN)
        config = await configure(
            connectors,
            db_session,
            workspace_id,
            name,
            enabled=data.enabled,
            credentials=data.credentials,
            settings=data.settings,
        )
        return _workspace_connector_out(connectors, name, config)


def _workspace_connector_out(
    runtime: ConnectorRuntime, name: str, stored: ConnectorConfig | None
) -> WorkspaceConnectorOut:
    connector = runtime.registry.connectors[name]
    credentials, settings = secrets_and_settings(runtime, stored, connector)
    return WorkspaceConnectorOut(
        name=name,
        version=connector.version,
        description=connector.description,
        enabled=always_enabled(name) or bool(stored and stored.enabled),
        permissions=list(connector.permissions),
        credentials_set=sorted(k for k, v in credentials.items() if v),
        settings=settings,
    )


@route(
    "/hooks/{connector:str}/{workspace_id:uuid}/{path:path}",
    http_method=["GET", "POST"],
    tags=["connectors"],
    include_in_schema=False,
)
async def plugin_route(
    request: Request[Any, Any, Any],
    connector: FromPath[str],
    workspace_id: FromPath[UUID],
    path: FromPath[str],
    db_session: NamedDependency[AsyncSession],
    connectors: NamedDependency[ConnectorRuntime],
) -> Response[bytes]:
    """A plugin's webhook or callback. Unauthenticated: the plugin checks signatures itself.
    Only a workspace that enabled the connector can receive anything. Each address is rate
    limited per connector before any lookup, so a flood costs one Redis call per request."""
    limits = connectors.settings
    key = f"hook:{connector}:{ratelimit.client_address(request)}"
    if wait := await ratelimit.hit(connectors.redis, key, limits.hook_rate_limit, limits.hook_rate_window):
        raise RateLimited(f"too many requests to the {connector} hooks; wait {wait:.1f} s", wait)
    hook = connectors.registry.routes.get((connector, path))
    config = await get_config(db_session, workspace_id, connector)
    workspace = await db_session.get(Workspace, workspace_id)
    if (
        hook is None
        or request.method not in hook.methods
        or workspace is None
        or not (config and config.enabled)
    ):
        raise NotFound("no such hook")
    credentials, settings = secrets_and_settings(
        connectors, config, connectors.registry.connectors[connector]
    )
    request_to_plugin = HookRequest(
        method=request.method,
        path=path,
        query=dict(request.query_params),
        headers=dict(request.headers),
        body=await request.body(),
        connector=connector,
        workspace=WorkspaceFacade(connectors, db_session, workspace_id, connector),
        credentials=credentials,
        settings=settings,
        http=connectors.http,
        cache=cache_for(connectors, connector, workspace_id),
    )
    try:
        answer = await hook.handler(request_to_plugin)
    except Exception as exc:
        # Logged here, masked, rather than by the app's handler: the message may quote a credential.
        log.error(
            "route %s%s of connector %s failed: %s: %s",
            connector,
            path,
            connector,
            type(exc).__name__,
            mask(str(exc), [v for v in credentials.values() if v]),
        )
        return Response(b"the connector failed", status_code=500, media_type="text/plain")
    body = answer.body.encode() if isinstance(answer.body, str) else answer.body
    return Response(body, status_code=answer.status, headers=dict(answer.headers), media_type="text/plain")
