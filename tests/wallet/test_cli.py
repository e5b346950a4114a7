from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.wallet.models import Account
from tests import SECRET_KEY
from tests.wallet.conftest import OpenAccount


async def wallet_check(database_url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mathia",
        "wallet",
        "check",
        env={**os.environ, "DATABASE_URL": database_url, "MATHIA_SECRET_KEY": SECRET_KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_check_passes_then_names_the_account_that_differs(
    database_url: str, session: AsyncSession, open_account: OpenAccount
) -> None:
    _, account_id = await open_account(70)
    assert await wallet_check(database_url) == (0, "the ledger balances\n")
    await session.execute(update(Account).where(Account.id == account_id).values(balance=Account.balance - 1))
    await session.commit()
    try:
        status, output = await wallet_check(database_url)
    finally:
        await session.execute(
            update(Account).where(Account.id == account_id).values(balance=Account.balance + 1)
        )
        await session.commit()
    assert status == 1
    assert output == f"account {account_id}: cached balance 69, lines sum to 70; 1 lines, seq 1\n"
