"""The plugin API: the only part of Mathia that plugins may import (with `mathia.connectors.testing`
for their tests). Hook specifications, the Connector protocol and what handlers receive."""

from mathia.connectors.api import (
    Action,
    ActionContext,
    ActionError,
    ActionResult,
    Cache,
    Connector,
    Field,
    HookRequest,
    HookResponse,
    Job,
    Member,
    Role,
    Route,
    StartupTask,
    Workspace,
)
from mathia.connectors.hookspecs import hookimpl

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionResult",
    "Cache",
    "Connector",
    "Field",
    "HookRequest",
    "HookResponse",
    "Job",
    "Member",
    "Role",
    "Route",
    "StartupTask",
    "Workspace",
    "hookimpl",
]
