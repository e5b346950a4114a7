"""The hooks a plugin may implement. Each is a plain function that returns objects;
async work lives inside the returned objects. docs/plugins.md has one section per hook."""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from mathia.connectors.api import Connector, Job, Route, StartupTask

PROJECT = "mathia"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def mathia_connectors() -> Sequence[Connector]:  # type: ignore[empty-body]
    """Connectors this plugin offers; workspaces enable them one by one."""


@hookspec
def mathia_routes() -> Sequence[Route]:  # type: ignore[empty-body]
    """HTTP routes (webhooks, OAuth callbacks) served under /hooks/{connector}/{workspace_id}."""


@hookspec
def mathia_jobs() -> Sequence[Job]:  # type: ignore[empty-body]
    """Background jobs for the worker."""


@hookspec
def mathia_startup() -> Sequence[StartupTask]:  # type: ignore[empty-body]
    """Coroutine functions awaited once when a process starts; a failure is logged, not fatal."""
