"""Finding, loading and collecting plugins. The core never imports a plugin: they come
from the `mathia` entry-point group, and one that fails is logged and skipped."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from typing import Any

import pluggy

from mathia.connectors import hookspecs
from mathia.connectors.api import Action, Connector, Job, Route, StartupTask

log = logging.getLogger(__name__)

GROUP = "mathia"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass
class PluginInfo:
    name: str
    version: str
    connectors: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Everything the loaded plugins registered."""

    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    connectors: dict[str, Connector] = field(default_factory=dict)
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    jobs: list[Job] = field(default_factory=list)
    startup: list[StartupTask] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    def action(self, connector: str, name: str) -> Action | None:
        found = self.connectors.get(connector)
        return next((a for a in found.actions if a.name == name), None) if found else None


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def load(
    allowed: Sequence[str] | None = None,
    builtins: Iterable[tuple[str, object]] = (),
    eps: Iterable[EntryPoint] | None = None,
) -> Registry:
    """Load the built-in plugins, then the entry points (only `allowed` ones, when given)."""
    pm = plugin_manager()
    registry = Registry()
    for name, module in builtins:
        _register(pm, registry, name, _core_version(), functools.partial(_same, module))
    for ep in entry_points(group=GROUP) if eps is None else eps:
        if allowed is not None and ep.name not in allowed:
            continue
        version = ep.dist.version if ep.dist else "unknown"
        _register(pm, registry, ep.name, version, ep.load)
    return registry


def _same(plugin: object) -> object:
    return plugin


def _core_version() -> str:
    try:
        return version("mathia")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _register(
    pm: pluggy.PluginManager, registry: Registry, name: str, version: str, loader: Callable[[], Any]
) -> None:
    try:
        plugin = loader()
        pm.register(plugin, name=name)
    except Exception as exc:
        _fail(registry, name, "could not be loaded", exc)
        return
    try:
        pm.check_pending()  # a misspelt hook would otherwise be silently ignored
        connectors = [c for batch in _call(pm, "mathia_connectors", plugin) for c in batch]
        routes = [r for batch in _call(pm, "mathia_routes", plugin) for r in batch]
        jobs = [j for batch in _call(pm, "mathia_jobs", plugin) for j in batch]
        startup = [s for batch in _call(pm, "mathia_startup", plugin) for s in batch]
        for connector in connectors:
            _check_connector(registry, connector)
        known = {c.name for c in connectors}
        for route in routes:
            if route.connector not in known:
                raise ValueError(f"route {route.path} names connector {route.connector!r} it does not offer")
    except Exception as exc:
        pm.unregister(plugin)
        _fail(registry, name, "could not register", exc)
        return
    registry.plugins[name] = PluginInfo(name, version, [c.name for c in connectors])
    registry.connectors.update({c.name: c for c in connectors})
    registry.routes.update({(r.connector, r.path): r for r in routes})
    registry.jobs.extend(jobs)
    registry.startup.extend(startup)


def _call(pm: pluggy.PluginManager, hook: str, plugin: object) -> list[Sequence[Any]]:
    """Call one hook of one plugin only, so a failure is attributed to the plugin that caused it."""
    caller = getattr(pm.hook, hook)
    return [impl.function() for impl in caller.get_hookimpls() if impl.plugin is plugin]


def _check_connector(registry: Registry, connector: object) -> None:
    if not isinstance(connector, Connector):
        raise TypeError(f"{connector!r} lacks attributes of the Connector protocol")
    if not _NAME.match(connector.name):
        raise ValueError(f"connector name {connector.name!r} must be lowercase letters, digits and dashes")
    if connector.name in registry.connectors:
        raise ValueError(f"connector {connector.name!r} is already registered by another plugin")
    for action in connector.actions:
        if not _ACTION.match(action.name):
            raise ValueError(f"action name {action.name!r} must be lowercase letters, digits and underscores")


def _fail(registry: Registry, name: str, what: str, exc: Exception) -> None:
    log.error("plugin %s %s, skipped: %s: %s", name, what, type(exc).__name__, exc)
    registry.failures[name] = f"{type(exc).__name__}: {exc}"
