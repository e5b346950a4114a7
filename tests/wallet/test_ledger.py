from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.providers import Finish
from mathia.auth.models import User
from mathia.config import Settings
from mathia.wallet import services
from mathia.wallet.models import Account, Line, SystemAccount, Transfer, system_account_for
from tests import SECRET_KEY
from tests.wallet.conftest import OpenAccount


def call(model: str, input_tokens: int, output_tokens: int) -> Finish:
    return Finish("anthropic", model, input_tokens, output_tokens, "end_turn")


async def balance(session: AsyncSession, account_id: uuid.UUID) -> int:
    value = await session.scalar(select(Account.balance).where(Account.id == account_id))
    assert value is not None
    return value


async def test_open_account_grants_once(session: AsyncSession, open_account: OpenAccount) -> None:
    tenant_id, account_id = await open_account(500)
    again = await services.open_workspace_account(session, tenant_id, 500)
    await session.commit()
    assert again.id == account_id and again.balance == 500
    lines = (await session.execute(select(Line).where(Line.account_id == account_id))).scalars().all()
    assert [(line.seq, line.amount, line.balance_after) for line in lines] == [(1, 500, 500)]


async def test_transfer_moves_money_and_writes_both_lines(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    _, a = await open_account(100)
    _, b = await open_account(0)
    posted = await services.transfer(session, debit=a, credit=b, amount=30, key=f"t-{uuid.uuid4()}")
    await session.commit()
    assert (posted.debit_balance, posted.credit_balance, posted.replayed) == (70, 30, False)
    assert (await balance(session, a), await balance(session, b)) == (70, 30)
    lines = (
        (await session.execute(select(Line).where(Line.transfer_id == posted.transfer_id))).scalars().all()
    )
    assert sorted((line.account_id, line.amount) for line in lines) == sorted([(a, -30), (b, 30)])


@pytest.mark.parametrize("debit_first", [True, False])
async def test_refused_overdraft_changes_nothing(
    session: AsyncSession, open_account: OpenAccount, debit_first: bool
) -> None:
    # Both lock orders: a refusal after the credit side moved must be taken back too.
    accounts = sorted([(await open_account(50))[1], (await open_account(7))[1]])
    debit, credit = accounts if debit_first else accounts[::-1]
    before = {a: await balance(session, a) for a in accounts}
    key = f"t-{uuid.uuid4()}"
    with pytest.raises(services.InsufficientCredits) as refused:
        await services.transfer(session, debit=debit, credit=credit, amount=before[debit] + 1, key=key)
    assert refused.value.balance == before[debit] and refused.value.status_code == 402
    await session.commit()  # commits whatever the refusal left behind: it must be nothing
    assert {a: await balance(session, a) for a in accounts} == before
    assert await session.scalar(select(Transfer.id).where(Transfer.idempotency_key == key)) is None
    assert await services.check_ledger(session) == []
    # The key was not spent by the refusal.
    posted = await services.transfer(session, debit=debit, credit=credit, amount=before[debit], key=key)
    await session.commit()
    assert posted.debit_balance == 0 and not posted.replayed


async def test_same_key_replays_and_different_transfer_conflicts(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    _, a = await open_account(100)
    _, b = await open_account(0)
    key = f"t-{uuid.uuid4()}"
    first = await services.transfer(session, debit=a, credit=b, amount=10, key=key)
    await services.transfer(session, debit=a, credit=b, amount=5, key=f"t-{uuid.uuid4()}")
    await session.commit()
    again = await services.transfer(session, debit=a, credit=b, amount=10, key=key)
    assert again == services.Posted(first.transfer_id, 10, 90, 10, replayed=True)
    for change in ({"amount": 11}, {"debit": b, "credit": a}):
        arguments = {"debit": a, "credit": b, "amount": 10, **change}
        with pytest.raises(services.IdempotencyConflict, match="idempotency_key"):
            await services.transfer(session, key=key, **arguments)  # type: ignore[arg-type]
    await session.commit()
    assert (await balance(session, a), await balance(session, b)) == (85, 15)


@pytest.mark.parametrize("amount", [0, -5])
async def test_non_positive_amounts_are_refused(
    session: AsyncSession, open_account: OpenAccount, amount: int
) -> None:
    _, a = await open_account(10)
    _, b = await open_account(0)
    with pytest.raises(services.errors.InvalidInput, match="amount"):
        await services.transfer(session, debit=a, credit=b, amount=amount, key=f"t-{uuid.uuid4()}")


async def test_ai_usage_is_priced_charged_once_and_capped_at_the_balance(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    settings = Settings.from_env(
        {},
        secret_key=SECRET_KEY,
        wallet_min_balance=100,
        wallet_prices='{"*": {"input": 1000000, "output": 2000000}, "cheap": {"input": 1, "output": 1}}',
    )
    tenant_id, account_id = await open_account(1000)
    message = uuid.uuid4()
    await services.ensure_can_generate(session, tenant_id, settings=settings)
    for _ in range(2):  # charged once per message, however often the caller retries
        await services.charge_ai_usage(
            session, tenant_id, f"ai:{message}", [call("big", 100, 50)], settings=settings
        )
        await session.commit()
    assert await balance(session, account_id) == 1000 - (100 * 1 + 50 * 2)
    # A millionth of a unit still costs one unit.
    await services.charge_ai_usage(
        session, tenant_id, f"ai:{uuid.uuid4()}", [call("cheap", 1, 0)], settings=settings
    )
    assert await balance(session, account_id) == 799
    # An answer that took a tool round pays for both model calls, in one transfer.
    rounds = [call("big", 10, 5), call("big", 20, 1)]
    await services.charge_ai_usage(session, tenant_id, f"ai:{uuid.uuid4()}", rounds, settings=settings)
    assert await balance(session, account_id) == 799 - (10 + 5 * 2) - (20 + 1 * 2)
    memos = set(await session.scalars(select(Transfer.memo).where(Transfer.debit_account_id == account_id)))
    assert "big: 30 input and 6 output tokens in 2 calls" in memos
    # An answer that cost more than was left takes what is left, never more, and a retry
    # once the wallet holds more again takes nothing.
    costly = f"ai:{uuid.uuid4()}"
    await services.charge_ai_usage(session, tenant_id, costly, [call("big", 5000, 0)], settings=settings)
    await session.commit()
    assert await balance(session, account_id) == 0
    await services.credit_top_up(session, tenant_id, "stripe", f"pi_{uuid.uuid4().hex}", 50)
    await services.charge_ai_usage(session, tenant_id, costly, [call("big", 5000, 0)], settings=settings)
    assert await balance(session, account_id) == 50
    await services.charge_ai_usage(
        session, tenant_id, f"ai:{uuid.uuid4()}", [call("big", 50, 0)], settings=settings
    )
    await session.commit()
    assert await balance(session, account_id) == 0
    with pytest.raises(services.InsufficientCredits) as refused:
        await services.ensure_can_generate(session, tenant_id, settings=settings)
    assert refused.value.code == "insufficient_credits" and refused.value.needed == 100
    assert await services.check_ledger(session) == []


async def test_top_up_is_credited_once_per_provider_payment(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    tenant_id, account_id = await open_account(0)
    payment = f"pi_{uuid.uuid4().hex}"
    results = [await services.credit_top_up(session, tenant_id, "stripe", payment, 2500) for _ in range(3)]
    await session.commit()
    assert results == [True, False, False]
    assert await balance(session, account_id) == 2500
    # The same payment id from another provider is another payment.
    assert await services.credit_top_up(session, tenant_id, "intasend", payment, 100)
    with pytest.raises(services.IdempotencyConflict):
        await services.credit_top_up(session, tenant_id, "stripe", payment, 9999)
    await session.commit()
    assert await balance(session, account_id) == 2600


async def test_statement_pages_newest_first_with_counterparty_and_running_balance(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    tenant_id, _ = await open_account(1000)
    user = User(email=f"{uuid.uuid4().hex}@example.com", display_name="Owner", password_hash="-")
    session.add(user)
    await session.flush()
    for i in range(4):
        await services.adjust(session, tenant_id, user.id, -(i + 1), f"fix {i}", f"k{i}")
    await session.commit()
    first = await services.statement(session, tenant_id, None, 3)
    assert first.has_more and first.balance == 990
    assert [(line.seq, line.amount, line.balance_after) for line in first.items] == [
        (5, -4, 990),
        (4, -3, 994),
        (3, -2, 997),
    ]
    assert first.items[0].counterparty.name == SystemAccount.ADJUSTMENTS
    assert first.items[0].counterparty.account_id == system_account_for(
        SystemAccount.ADJUSTMENTS, f"adjustment:{tenant_id}:k3"
    )
    audited = await session.scalar(select(Transfer).where(Transfer.id == first.items[0].transfer_id))
    assert audited is not None and (audited.actor_id, audited.memo) == (user.id, "fix 3")
    rest = await services.statement(session, tenant_id, first.items[-1].seq, 3)
    assert not rest.has_more
    assert [(line.seq, line.kind, line.balance_after) for line in rest.items] == [
        (2, "adjustment", 999),
        (1, "grant", 1000),
    ]


async def test_check_reports_a_tampered_balance(session: AsyncSession, open_account: OpenAccount) -> None:
    _, account_id = await open_account(40)
    assert await services.check_ledger(session) == []
    await session.execute(update(Account).where(Account.id == account_id).values(balance=41))
    bare = Transfer(
        idempotency_key=f"bare-{uuid.uuid4()}",
        debit_account_id=account_id,
        credit_account_id=system_account_for(SystemAccount.GRANTS, "x"),
        amount=1,
        kind="transfer",
    )
    session.add(bare)
    await session.flush()
    found = await services.check_ledger(session)
    await session.rollback()
    assert [(d.account_id, d.cached_balance, d.sum_of_lines) for d in found] == [
        (account_id, 41, 40),
        (None, 0, 0),
    ]
    assert found[1].detail == f"transfer {bare.id} has no lines"


async def test_a_batch_settles_each_transfer_on_its_own(
    session: AsyncSession, open_account: OpenAccount
) -> None:
    _, a = await open_account(10)
    _, b = await open_account(0)
    key = f"t-{uuid.uuid4()}"

    def request(debit: uuid.UUID, credit: uuid.UUID, amount: int, key: str) -> services.TransferRequest:
        return services.TransferRequest(debit=debit, credit=credit, amount=amount, key=key)

    outcomes = await services.post(
        session,
        [
            request(a, b, 8, key),
            request(a, b, 8, f"t-{uuid.uuid4()}"),  # only 2 left: refused
            request(b, a, 5, f"t-{uuid.uuid4()}"),  # paid from what the first one brought
            request(a, b, 8, key),  # a retry within the batch
            request(a, b, 9, key),  # the key reused for another transfer
            request(a, b, 0, f"t-{uuid.uuid4()}"),
        ],
    )
    await session.commit()
    first = outcomes[0]
    assert isinstance(first, services.Posted) and (first.debit_balance, first.replayed) == (2, False)
    assert isinstance(outcomes[1], services.InsufficientCredits) and outcomes[1].balance == 2
    assert isinstance(outcomes[2], services.Posted) and outcomes[2].debit_balance == 3
    assert outcomes[3] == services.Posted(first.transfer_id, 8, 2, 8, replayed=True)
    assert isinstance(outcomes[4], services.IdempotencyConflict)
    assert isinstance(outcomes[5], services.errors.InvalidInput)
    assert (await balance(session, a), await balance(session, b)) == (7, 3)
    assert await services.check_ledger(session) == []
