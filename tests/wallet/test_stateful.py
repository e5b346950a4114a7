"""Random transfers, retries and refused overdrafts against a simple model of the ledger,
with every invariant checked after each step, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from mathia.tenants.models import Workspace
from mathia.wallet import services
from mathia.wallet.models import Account, SystemAccount, system_account_id

T = TypeVar("T")
WORKSPACES = 3
SYSTEM = system_account_id(SystemAccount.ADJUSTMENTS, 0)


def ledger_machine(url: str) -> type[RuleBasedStateMachine]:
    class Ledger(RuleBasedStateMachine):
        """The model: a balance per account, and every transfer ever posted by key."""

        sent = Bundle("sent")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.engine: AsyncEngine = create_async_engine(url, poolclass=NullPool)
            self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
            self.balances: dict[uuid.UUID, int] = {}
            self.posted: dict[str, tuple[uuid.UUID, uuid.UUID, int, uuid.UUID]] = {}

        def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
            return self.loop.run_until_complete(coroutine)

        def teardown(self) -> None:
            self.run(self.engine.dispose())
            self.loop.close()

        @initialize()
        def open_accounts(self) -> None:
            async def open_() -> None:
                async with self.sessions() as session, session.begin():
                    for _ in range(WORKSPACES):
                        workspace = Workspace(name="stateful")
                        session.add(workspace)
                        await session.flush()
                        self.balances[
                            (await services.open_workspace_account(session, workspace.id, 0)).id
                        ] = 0
                    balance = await session.scalar(select(Account.balance).where(Account.id == SYSTEM))
                    self.balances[SYSTEM] = balance or 0

            self.run(open_())

        def account(self, index: int) -> uuid.UUID:
            return list(self.balances)[index]

        async def transfer(
            self, debit: uuid.UUID, credit: uuid.UUID, amount: int, key: str
        ) -> services.Posted:
            async with self.sessions() as session:
                # Commit even after a refusal: a refused transfer must have written nothing.
                try:
                    return await services.transfer(
                        session, debit=debit, credit=credit, amount=amount, key=key
                    )
                finally:
                    await session.commit()

        @rule(
            target=sent,
            debit=st.integers(0, WORKSPACES),
            credit=st.integers(0, WORKSPACES),
            amount=st.integers(1, 60),
        )
        def send(self, debit: int, credit: int, amount: int) -> str:
            source, sink = self.account(debit), self.account(credit)
            key = f"stateful-{uuid.uuid4()}"
            if source == sink:
                return key
            if source != SYSTEM and self.balances[source] < amount:
                with pytest.raises(services.InsufficientCredits) as refused:
                    self.run(self.transfer(source, sink, amount, key))
                assert refused.value.balance == self.balances[source]
                return key
            posted = self.run(self.transfer(source, sink, amount, key))
            self.balances[source] -= amount
            self.balances[sink] += amount
            assert not posted.replayed
            assert (posted.debit_balance, posted.credit_balance) == (
                self.balances[source],
                self.balances[sink],
            )
            self.posted[key] = (source, sink, amount, posted.transfer_id)
            return key

        @rule(
            batch=st.lists(
                st.tuples(st.integers(0, WORKSPACES), st.integers(0, WORKSPACES), st.integers(1, 60)),
                min_size=1,
                max_size=6,
            )
        )
        def send_batch(self, batch: list[tuple[int, int, int]]) -> None:
            """Several transfers in one transaction settle as if posted one after another."""
            requests = [
                services.TransferRequest(
                    debit=self.account(d), credit=self.account(c), amount=a, key=f"stateful-{uuid.uuid4()}"
                )
                for d, c, a in batch
            ]

            async def post() -> list[services.Outcome]:
                async with self.sessions() as session, session.begin():
                    return await services.post(session, requests)

            for request, outcome in zip(requests, self.run(post()), strict=True):
                source, sink, amount = request.debit, request.credit, request.amount
                if source == sink:
                    assert isinstance(outcome, services.errors.InvalidInput)
                elif source != SYSTEM and self.balances[source] < amount:
                    assert isinstance(outcome, services.InsufficientCredits)
                else:
                    assert isinstance(outcome, services.Posted)
                    self.balances[source] -= amount
                    self.balances[sink] += amount
                    assert (outcome.debit_balance, outcome.credit_balance) == (
                        self.balances[source],
                        self.balances[sink],
                    )
                    self.posted[request.key] = (source, sink, amount, outcome.transfer_id)

        @rule(key=sent)
        def retry(self, key: str) -> None:
            if key not in self.posted:
                return
            source, sink, amount, transfer_id = self.posted[key]
            posted = self.run(self.transfer(source, sink, amount, key))
            assert posted.replayed and posted.transfer_id == transfer_id

        @rule(key=sent, extra=st.integers(1, 5))
        def reuse_key_for_another_transfer(self, key: str, extra: int) -> None:
            if key not in self.posted:
                return
            source, sink, amount, _ = self.posted[key]
            with pytest.raises(services.IdempotencyConflict):
                self.run(self.transfer(source, sink, amount + extra, key))

        @invariant()
        def ledger_matches_the_model(self) -> None:
            if not self.balances:
                return

            async def read() -> tuple[dict[uuid.UUID, int], list[services.Discrepancy]]:
                async with self.sessions() as session:
                    rows = await session.execute(
                        select(Account.id, Account.balance).where(Account.id.in_(self.balances))
                    )
                    return {account_id: balance for account_id, balance in rows}, await services.check_ledger(
                        session
                    )

            balances, discrepancies = self.run(read())
            assert balances == self.balances
            assert discrepancies == []
            assert all(balance >= 0 for account_id, balance in balances.items() if account_id != SYSTEM)

    return Ledger


def test_ledger_against_a_model(database_url: str) -> None:
    machine = ledger_machine(database_url)
    # Its own thread and event loop: the suite's loop and its connections stay untouched.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            run_state_machine_as_test,
            machine,
            settings=settings(
                max_examples=15,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        ).result()
