"""Concurrent transfers on PostgreSQL, where row locks (not SQLite's single writer) keep the ledger sound."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from mathia.tenants.models import Workspace
from mathia.wallet import services
from mathia.wallet.models import Account, Line, Transfer
from mathia.wallet.poster import Poster
from mathia.wallet.services import TransferRequest


@pytest.fixture(scope="module")
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    # Forty connections: far more contenders than the account has lock slots, within the server's limit.
    engine = create_async_engine(postgres_url, pool_size=40, max_overflow=0)
    yield engine
    await engine.dispose()


async def new_account(sessions: async_sessionmaker[AsyncSession], grant: int) -> uuid.UUID:
    async with sessions() as session, session.begin():
        workspace = Workspace(name="concurrency")
        session.add(workspace)
        await session.flush()
        return (await services.open_workspace_account(session, workspace.id, grant)).id


async def test_hot_account_pays_exactly_what_it_can_afford(pg_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(pg_engine, expire_on_commit=False)
    hot = await new_account(sessions, 100 * 7)
    others = [await new_account(sessions, 0) for _ in range(5)]

    async def debit(i: int) -> bool:
        try:
            async with sessions() as session, session.begin():
                await services.transfer(
                    session, debit=hot, credit=others[i % 5], amount=7, key=f"hot-{hot}-{i}"
                )
            return True
        except services.InsufficientCredits:
            return False

    outcomes = await asyncio.wait_for(asyncio.gather(*(debit(i) for i in range(200))), timeout=120)
    assert outcomes.count(True) == 100
    async with sessions() as session:
        assert await session.scalar(select(Account.balance).where(Account.id == hot)) == 0
        assert (
            sum([await session.scalar(select(Account.balance).where(Account.id == o)) or 0 for o in others])
            == 700
        )
        balances = (
            await session.scalars(select(Line.balance_after).where(Line.account_id == hot).order_by(Line.seq))
        ).all()
        # The statement replays the lock order: 700, 693, ..., 0 with no gaps or negatives.
        assert balances == list(range(700, -1, -7))
        assert await services.check_ledger(session) == []


async def test_opposite_transfers_do_not_deadlock(pg_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(pg_engine, expire_on_commit=False)
    a, b = await new_account(sessions, 1000), await new_account(sessions, 1000)

    async def move(i: int) -> None:
        debit, credit = (a, b) if i % 2 else (b, a)
        async with sessions() as session, session.begin():
            await services.transfer(session, debit=debit, credit=credit, amount=1 + i % 3, key=f"ab-{a}-{i}")

    await asyncio.wait_for(asyncio.gather(*(move(i) for i in range(120))), timeout=120)
    async with sessions() as session:
        balances = (await session.scalars(select(Account.balance).where(Account.id.in_([a, b])))).all()
        assert sum(balances) == 2000
        assert await services.check_ledger(session) == []


async def test_one_key_sent_from_twenty_tasks_moves_money_once(pg_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(pg_engine, expire_on_commit=False)
    payer, payee = await new_account(sessions, 50), await new_account(sessions, 0)
    key = f"once-{uuid.uuid4()}"

    async def send() -> services.Posted:
        async with sessions() as session, session.begin():
            return await services.transfer(session, debit=payer, credit=payee, amount=30, key=key)

    results = await asyncio.wait_for(asyncio.gather(*(send() for _ in range(20))), timeout=60)
    assert len({r.transfer_id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False] + [True] * 19
    assert {(r.debit_balance, r.credit_balance) for r in results} == {(20, 30)}
    async with sessions() as session:
        assert await session.scalar(select(Account.balance).where(Account.id == payee)) == 30
        assert (
            len((await session.scalars(select(Transfer.id).where(Transfer.idempotency_key == key))).all())
            == 1
        )


async def test_batched_poster_on_a_hot_account(pg_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker(pg_engine, expire_on_commit=False)
    poster = Poster(sessions, max_batch=32)
    hot = await new_account(sessions, 100 * 3)
    other = await new_account(sessions, 0)

    async def debit(i: int) -> bool:
        # Every tenth asks for an account that does not exist: it fails alone, not its batch.
        credit = uuid.uuid4() if i % 10 == 0 else other
        try:
            await poster.transfer(
                TransferRequest(debit=hot, credit=credit, amount=3, key=f"poster-{hot}-{i}")
            )
            return True
        except services.InsufficientCredits:
            return False
        except IntegrityError:
            assert credit != other
            return False

    outcomes = await asyncio.wait_for(asyncio.gather(*(debit(i) for i in range(220))), timeout=120)
    assert outcomes.count(True) == 100
    async with sessions() as session:
        assert await session.scalar(select(Account.balance).where(Account.id == hot)) == 0
        assert await session.scalar(select(Account.balance).where(Account.id == other)) == 300
        assert await services.check_ledger(session) == []
