"""Ledger throughput on PostgreSQL: the wallet's transfer against a naive read-check-write.

    uv run python bench/wallet.py [--clients 64] [--seconds 8] [--accounts 1000]

Creates a scratch database next to MATHIA_BENCH_POSTGRES (default: the local test server),
migrates it, runs four scenarios (spread over many accounts / all debiting one hot account,
for each implementation), reconciles the ledger, and drops the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from uuid import UUID

import asyncpg
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from mathia.config import Settings
from mathia.db.migrations import upgrade
from mathia.tenants.models import Workspace
from mathia.wallet import services
from mathia.wallet.models import Account, Line, Transfer, TransferKind
from mathia.wallet.poster import Poster
from mathia.wallet.services import TransferRequest

SERVER = os.environ.get("MATHIA_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
Move = Callable[[UUID, UUID, str], Awaitable[object]]


async def ledger_transfer(session: AsyncSession, debit: UUID, credit: UUID, key: str) -> object:
    return await services.transfer(session, debit=debit, credit=credit, amount=1, key=key)


def batched(poster: Poster) -> Move:
    async def move(debit: UUID, credit: UUID, key: str) -> object:
        return await poster.transfer(TransferRequest(debit=debit, credit=credit, amount=1, key=key))

    return move


def per_transaction(
    sessions: async_sessionmaker[AsyncSession],
    body: Callable[[AsyncSession, UUID, UUID, str], Awaitable[object]],
) -> Move:
    async def move(debit: UUID, credit: UUID, key: str) -> object:
        async with sessions() as session, session.begin():
            return await body(session, debit, credit, key)

    return move


async def naive_transfer(session: AsyncSession, debit: UUID, credit: UUID, key: str) -> object:
    """The textbook version: lock both rows (in id order), read, check in Python, write."""
    amount = 1
    rows = await session.execute(
        select(Account.id, Account.balance, Account.last_seq)
        .where(Account.id.in_([debit, credit]))
        .order_by(Account.id)
        .with_for_update()
    )
    state = {account_id: (balance, seq) for account_id, balance, seq in rows}
    if state[debit][0] < amount:
        raise services.InsufficientCredits(debit, state[debit][0], amount)
    transfer_id = uuid.uuid4()
    await session.execute(
        insert(Transfer).values(
            id=transfer_id,
            idempotency_key=key,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            kind=TransferKind.TRANSFER,
        )
    )
    lines = []
    for account_id, delta in ((debit, -amount), (credit, amount)):
        balance, seq = state[account_id]
        await session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance=balance + delta, last_seq=seq + 1)
            .execution_options(synchronize_session=False)
        )
        lines.append(
            {
                "transfer_id": transfer_id,
                "account_id": account_id,
                "seq": seq + 1,
                "amount": delta,
                "balance_after": balance + delta,
            }
        )
    await session.execute(insert(Line), lines)
    return transfer_id


async def run(
    move: Move,
    pairs: Callable[[], tuple[UUID, UUID]],
    clients: int,
    seconds: float,
) -> tuple[float, float, float, int]:
    """Runs `clients` loops of one-transfer transactions for `seconds`: (tps, p50 ms, p99 ms, errors)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            debit, credit = pairs()
            started = time.perf_counter()
            try:
                await move(debit, credit, secrets.token_hex(12))
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000, errors


async def bench(url: str, clients: int, seconds: float, count: int) -> None:
    engine = create_async_engine(url, pool_size=clients, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        workspaces = [Workspace(name=f"bench {i}") for i in range(count)]
        session.add_all(workspaces)
        await session.flush()
        accounts = [(await services.open_workspace_account(session, w.id, 10**12)).id for w in workspaces]
        await session.commit()
    rng = secrets.SystemRandom()
    poster = Poster(sessions)
    hot = accounts[0]

    def spread() -> tuple[UUID, UUID]:
        debit, credit = rng.sample(accounts, 2)
        return debit, credit

    def hot_debit() -> tuple[UUID, UUID]:
        return hot, rng.choice(accounts[1:])

    print(f"{clients} clients, {seconds:g} s each, {count} accounts")
    print(f"{'scenario':<28}{'transfers/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    results = {}
    for scenario, pairs in (("spread", spread), ("hot account", hot_debit)):
        variants = (
            ("ledger", per_transaction(sessions, ledger_transfer)),
            ("ledger batched", batched(poster)),
            ("naive", per_transaction(sessions, naive_transfer)),
        )
        for name, move in variants:
            await run(move, pairs, clients, 1)  # warm the pool and the caches
            tps, p50, p99, errors = await run(move, pairs, clients, seconds)
            results[scenario, name] = (tps, p99)
            print(f"{scenario + ', ' + name:<28}{tps:>12.0f}{p50:>9.1f}{p99:>9.1f}{errors:>8}")
    for scenario in ("spread", "hot account"):
        naive_tps, naive_p99 = results[scenario, "naive"]
        for name in ("ledger", "ledger batched"):
            tps, p99 = results[scenario, name]
            print(
                f"{scenario}, {name}: {tps / naive_tps:.2f}x the naive throughput, "
                f"p99 {p99:.1f} ms vs {naive_p99:.1f} ms"
            )
    async with sessions() as session:
        found = await services.check_ledger(session)
    print("wallet check:", found or "clean")
    await engine.dispose()


async def admin(sql: str) -> None:
    connection = await asyncpg.connect(SERVER.replace("+asyncpg", ""))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    name = f"mathia_bench_{secrets.token_hex(4)}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = SERVER.rsplit("/", 1)[0] + f"/{name}"
        upgrade(Settings.from_env({}, database_url=url, secret_key=secrets.token_urlsafe(32)))
        asyncio.run(bench(url, args.clients, args.seconds, args.accounts))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
