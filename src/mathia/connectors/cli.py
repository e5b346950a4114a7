"""`mathia plugins`: the installed plugins, one a line (name, version, connectors);
`mathia plugins rotate-keys`: re-encrypt stored connector secrets with the newest key."""

from __future__ import annotations

import asyncio
import os

import click

from mathia.connectors import manager


@click.group("plugins", invoke_without_command=True)
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """List installed plugins and their connectors; plugins that failed to load go to stderr."""
    if ctx.invoked_subcommand is not None:
        return
    from mathia.actions import builtin

    allowed = os.environ.get("MATHIA_PLUGINS")
    registry = manager.load(
        [n.strip() for n in allowed.split(",")] if allowed else None, builtins=[("builtin", builtin)]
    )
    for info in registry.plugins.values():
        click.echo(f"{info.name} {info.version} {','.join(info.connectors) or '-'}")
    for name, reason in registry.failures.items():
        click.echo(f"{name}: not loaded ({reason})", err=True)


@plugins.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored credential and token with the first key of MATHIA_CONNECTOR_KEYS."""
    from mathia.config import Settings
    from mathia.connectors.crypto import Crypto
    from mathia.connectors.services import rotate_credentials
    from mathia.db import database_config, session_scope

    settings = Settings.from_env()

    async def run() -> int:
        config = database_config(settings)
        try:
            async with session_scope(config) as session:
                return await rotate_credentials(session, Crypto.from_settings(settings))
        finally:
            await config.get_engine().dispose()

    click.echo(f"re-encrypted {asyncio.run(run())} secrets")
