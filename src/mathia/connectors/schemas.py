from __future__ import annotations

import msgspec

from mathia.connectors.api import Connector


class FieldOut(msgspec.Struct):
    name: str
    description: str
    required: bool
    default: str | None = None


class ActionOut(msgspec.Struct):
    name: str
    description: str
    min_role: str
    needs_approval: bool
    parameters: dict[str, object]


class ConnectorOut(msgspec.Struct):
    name: str
    version: str
    description: str
    permissions: list[str]
    actions: list[ActionOut]
    credentials: list[FieldOut]
    settings: list[FieldOut]


class PluginOut(msgspec.Struct):
    name: str
    version: str
    connectors: list[ConnectorOut]


class WorkspaceConnectorOut(msgspec.Struct):
    name: str
    version: str
    description: str
    enabled: bool
    permissions: list[str]
    # Names of the credentials that are set; their values never leave the server.
    credentials_set: list[str]
    settings: dict[str, str]


class ConnectorUpdate(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool | None = None
    credentials: dict[str, str] | None = None
    settings: dict[str, str] | None = None


def connector_out(connector: Connector) -> ConnectorOut:
    from mathia.actions.router import params_schema

    return ConnectorOut(
        name=connector.name,
        version=connector.version,
        description=connector.description,
        permissions=list(connector.permissions),
        actions=[
            ActionOut(a.name, a.description, a.min_role.value, a.needs_approval, params_schema(a.params))
            for a in connector.actions
        ],
        credentials=[FieldOut(f.name, f.description, f.required) for f in connector.credentials],
        settings=[FieldOut(f.name, f.description, f.required, f.default) for f in connector.settings],
    )
