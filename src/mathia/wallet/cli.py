"""`mathia wallet`: ledger maintenance from the command line."""

from __future__ import annotations

import asyncio

import click

from mathia.config import Settings
from mathia.db import database_config, session_scope
from mathia.wallet.services import Discrepancy, check_ledger


async def reconcile(settings: Settings) -> list[Discrepancy]:
    config = database_config(settings)
    try:
        async with session_scope(config) as session:
            return await check_ledger(session)
    finally:
        await config.get_engine().dispose()


@click.group()
def wallet() -> None:
    """The credit ledger."""


@wallet.command()
def check() -> None:
    """Verify that every cached balance equals the sum of its lines and that all lines sum
    to zero. Exits with status 1, listing what differs, when the ledger does not balance."""
    found = asyncio.run(reconcile(Settings.from_env()))
    for discrepancy in found:
        where = f"account {discrepancy.account_id}" if discrepancy.account_id else "ledger"
        click.echo(f"{where}: {discrepancy.detail}", err=True)
    if found:
        raise SystemExit(1)
    click.echo("the ledger balances")
