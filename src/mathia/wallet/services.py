"""Transfers between ledger accounts, and what is built on them: starting grants, AI billing,
top-ups and adjustments.

A transfer runs inside the caller's transaction and commits with it. It writes nothing that
survives a refusal: an overdraft or a reused key raises with the session as it was.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Protocol, cast
from uuid import UUID, uuid4

import msgspec
from sqlalchemy import Executable, Table, and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from mathia import errors
from mathia.config import Settings
from mathia.wallet import pricing
from mathia.wallet.models import Account, Line, SystemAccount, Transfer, TransferKind, system_account_for
from mathia.wallet.schemas import Counterparty, Statement, StatementLine

log = logging.getLogger(__name__)


class InsufficientCredits(errors.InsufficientCredits):
    def __init__(self, account_id: UUID, balance: int, needed: int) -> None:
        super().__init__(
            f"the wallet holds {balance} credit units and this needs {needed}",
            account_id=str(account_id),
            balance=balance,
            needed=needed,
        )
        self.account_id = account_id
        self.balance = balance
        self.needed = needed


class IdempotencyConflict(errors.Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency_key: {key!r} was already used for a different transfer")
        self.key = key


class Posted(msgspec.Struct, frozen=True):
    transfer_id: UUID
    amount: int
    debit_balance: int
    credit_balance: int
    replayed: bool  # True when the key had been used for this same transfer before


class TransferRequest(msgspec.Struct, frozen=True, kw_only=True):
    debit: UUID
    credit: UUID
    amount: int
    key: str
    kind: TransferKind = TransferKind.TRANSFER
    memo: str = ""
    actor_id: UUID | None = None  # who asked for it: adjustments are audited by this


Outcome = Posted | errors.MathiaError

# Core statements, built once: the transfer path is hot, and the ORM adds nothing to it.
_accounts = cast("Table", Account.__table__)
_transfers = cast("Table", Transfer.__table__)
_INSERT_TRANSFERS: dict[str, Executable] = {
    name: insert_(_transfers)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(_transfers.c.idempotency_key)
    for name, insert_ in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_LOCK_ACCOUNTS = (
    select(_accounts.c.id, _accounts.c.balance, _accounts.c.last_seq, _accounts.c.allow_negative)
    .where(_accounts.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_accounts.c.id)
    # NO KEY UPDATE: the foreign-key checks of concurrent inserts take KEY SHARE on these
    # rows, which plain FOR UPDATE would wait on (and deadlock with).
    .with_for_update(key_share=True)
)
_SET_BALANCE = (
    update(_accounts)
    .where(_accounts.c.id == bindparam("account"))
    .values(balance=bindparam("new_balance"), last_seq=bindparam("new_seq"))
)
_DROP_TRANSFERS = delete(_transfers).where(_transfers.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_LINES = insert(cast("Table", Line.__table__))


async def transfer(
    session: AsyncSession,
    *,
    debit: UUID,
    credit: UUID,
    amount: int,
    key: str,
    kind: TransferKind = TransferKind.TRANSFER,
    memo: str = "",
    actor_id: UUID | None = None,
) -> Posted:
    """Move `amount` from `debit` to `credit`, once per `key`, in the caller's transaction.
    Raises InsufficientCredits, IdempotencyConflict or InvalidInput, having written nothing."""
    request = TransferRequest(
        debit=debit, credit=credit, amount=amount, key=key, kind=kind, memo=memo, actor_id=actor_id
    )
    (outcome,) = await post(session, [request])
    if isinstance(outcome, errors.MathiaError):
        raise outcome
    return outcome


async def post(session: AsyncSession, requests: Sequence[TransferRequest]) -> list[Outcome]:
    """Post transfers in order, in the caller's transaction, with a fixed number of statements
    however many there are: a refused one (an error in its place in the answer) writes nothing
    and does not stop the others.

    Every account involved is locked at once, in id order, so no two transactions can
    deadlock; balances are then read, checked and written under those locks. A batch pays
    for its round trips and its commit once, which is what lets a hot account keep up.
    """
    outcomes: list[Outcome | None] = [None] * len(requests)
    first_of_key: dict[str, int] = {}
    for i, request in enumerate(requests):
        if request.amount <= 0:
            outcomes[i] = errors.InvalidInput("amount: must be a positive whole number of credit units")
        elif request.debit == request.credit:
            outcomes[i] = errors.InvalidInput("a transfer needs two different accounts")
        else:
            first_of_key.setdefault(request.key, i)
    fresh = sorted(first_of_key.values())
    ids = {i: uuid4() for i in fresh}
    new_keys: set[str] = set()
    if fresh:
        # The unique key is the idempotency lock: a concurrent twin waits here for our commit.
        inserted = await session.scalars(
            _INSERT_TRANSFERS[session.get_bind().dialect.name],
            [_transfer_row(ids[i], requests[i]) for i in fresh],
        )
        new_keys = set(inserted)
    new = [i for i in fresh if requests[i].key in new_keys]
    for i in fresh:
        if requests[i].key not in new_keys:
            outcomes[i] = await _replay(session, requests[i])
    if new:
        await _move(session, requests, new, ids, outcomes)
    # A key repeated within the batch: the later ones are retries of the first.
    for i, request in enumerate(requests):
        if outcomes[i] is None:
            outcomes[i] = _repeat(
                request, requests[first_of_key[request.key]], outcomes[first_of_key[request.key]]
            )
    return [outcome for outcome in outcomes if outcome is not None]


async def _move(
    session: AsyncSession,
    requests: Sequence[TransferRequest],
    new: list[int],
    ids: dict[int, UUID],
    outcomes: list[Outcome | None],
) -> None:
    involved = {account for i in new for account in (requests[i].debit, requests[i].credit)}
    locked = await session.execute(_LOCK_ACCOUNTS, {"ids": sorted(involved)})
    state = {
        account_id: [balance, seq, allow_negative] for account_id, balance, seq, allow_negative in locked
    }
    lines: list[dict[str, Any]] = []
    refused: list[UUID] = []
    for i in new:
        request, debit, credit = requests[i], state[requests[i].debit], state[requests[i].credit]
        if not debit[2] and debit[0] < request.amount:
            outcomes[i] = InsufficientCredits(request.debit, debit[0], request.amount)
            refused.append(ids[i])
            continue
        for account_id, account, amount in (
            (request.debit, debit, -request.amount),
            (request.credit, credit, request.amount),
        ):
            account[0] += amount
            account[1] += 1
            lines.append(
                {
                    "transfer_id": ids[i],
                    "account_id": account_id,
                    "seq": account[1],
                    "amount": amount,
                    "balance_after": account[0],
                }
            )
        outcomes[i] = Posted(ids[i], request.amount, debit[0], credit[0], replayed=False)
    if refused:
        await session.execute(_DROP_TRANSFERS, {"ids": refused})
    if lines:
        moved = sorted({line["account_id"] for line in lines})
        await session.execute(
            _SET_BALANCE, [{"account": a, "new_balance": state[a][0], "new_seq": state[a][1]} for a in moved]
        )
        await session.execute(_INSERT_LINES, lines)


def _transfer_row(transfer_id: UUID, request: TransferRequest) -> dict[str, Any]:
    return {
        "id": transfer_id,
        "idempotency_key": request.key,
        "debit_account_id": request.debit,
        "credit_account_id": request.credit,
        "amount": request.amount,
        "kind": request.kind,
        "memo": request.memo,
        "actor_id": request.actor_id,
    }


def _same(request: TransferRequest, debit: UUID, credit: UUID, amount: int, kind: str) -> bool:
    return (request.debit, request.credit, request.amount, request.kind) == (debit, credit, amount, kind)


def _repeat(request: TransferRequest, first: TransferRequest, outcome: Outcome | None) -> Outcome:
    if not _same(request, first.debit, first.credit, first.amount, first.kind):
        return IdempotencyConflict(request.key)
    assert outcome is not None  # the first of each key is settled before its repeats
    return msgspec.structs.replace(outcome, replayed=True) if isinstance(outcome, Posted) else outcome


def _insert(
    session: AsyncSession, entity: type[Account | Transfer | Line]
) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(entity) if dialect == "postgresql" else sqlite.insert(entity)


async def _replay(session: AsyncSession, request: TransferRequest) -> Outcome:
    first = (
        await session.execute(select(Transfer).where(Transfer.idempotency_key == request.key))
    ).scalar_one()
    if not _same(request, first.debit_account_id, first.credit_account_id, first.amount, first.kind):
        return IdempotencyConflict(request.key)
    lines = await session.execute(
        select(Line.account_id, Line.balance_after).where(Line.transfer_id == first.id)
    )
    after = {account_id: balance for account_id, balance in lines}
    return Posted(first.id, first.amount, after[request.debit], after[request.credit], replayed=True)


# -- workspace accounts ------------------------------------------------------------------


async def workspace_account(session: AsyncSession, tenant_id: UUID) -> Account:
    # populate_existing: the balance moves by Core UPDATEs the identity map does not see.
    query = select(Account).where(Account.tenant_id == tenant_id).execution_options(populate_existing=True)
    account = await session.scalar(query)
    if account is None:
        raise errors.NotFound("this workspace has no wallet")
    return account


async def open_workspace_account(session: AsyncSession, tenant_id: UUID, grant: int) -> Account:
    """Create the workspace's account and credit the starting grant (both only once)."""
    await session.execute(
        _insert(session, Account)
        .values(tenant_id=tenant_id)
        .on_conflict_do_nothing(index_elements=["tenant_id"])
    )
    account = await workspace_account(session, tenant_id)
    if grant > 0:
        key = f"grant:{tenant_id}"
        await transfer(
            session,
            debit=system_account_for(SystemAccount.GRANTS, key),
            credit=account.id,
            amount=grant,
            key=key,
            kind=TransferKind.GRANT,
            memo="starting grant",
        )
        await session.refresh(account)
    return account


# -- AI billing --------------------------------------------------------------------------


async def ensure_can_generate(
    session: AsyncSession, tenant_id: UUID, *, settings: Settings | None = None
) -> None:
    """Raise InsufficientCredits unless the workspace holds the minimum an answer needs."""
    minimum = (settings or _default_settings()).wallet_min_balance
    account = await workspace_account(session, tenant_id)
    if account.balance < minimum:
        raise InsufficientCredits(account.id, account.balance, minimum)


class ModelCall(Protocol):
    """What a charge needs of one model call (the assistant's `Finish` has it)."""

    @property
    def model(self) -> str: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...


async def charge_ai_usage(
    session: AsyncSession,
    tenant_id: UUID,
    key: str,
    calls: Sequence[ModelCall],
    *,
    memo: str = "",
    settings: Settings | None = None,
) -> None:
    """Charge model calls to the workspace, once per `key`: an assistant answer (`ai:<message
    id>`, all its calls: one more per tool round) or a workspace's share of a moderation batch.

    The work has already been done, so when it cost more than the wallet holds the charge
    takes what is left (the minimum checked before generating keeps that gap small).
    """
    prices = (settings or _default_settings()).wallet_prices
    amount = sum(pricing.cost(prices, c.model, c.input_tokens, c.output_tokens) for c in calls)
    if amount == 0:
        return
    account = await workspace_account(session, tenant_id)
    models = ", ".join(dict.fromkeys(c.model for c in calls))
    tokens = sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls)
    memo = f"{memo}{models}: {tokens[0]} input and {tokens[1]} output tokens"
    if len(calls) > 1:
        memo += f" in {len(calls)} calls"
    while amount > 0:
        try:
            await transfer(
                session,
                debit=account.id,
                credit=system_account_for(SystemAccount.AI_USAGE, key),
                amount=amount,
                key=key,
                kind=TransferKind.AI_USAGE,
                memo=memo,
            )
            return
        except InsufficientCredits as exc:
            log.warning("workspace %s could not cover %s credit units for %s", tenant_id, amount, key)
            amount, memo = exc.balance, f"{memo} (partly covered)"
        except IdempotencyConflict:  # charged before, for less: it took what was left then
            return


# -- top-ups and adjustments -------------------------------------------------------------


async def credit_top_up(
    session: AsyncSession, tenant_id: UUID, provider: str, provider_payment_id: str, amount: int
) -> bool:
    """Credit a paid top-up; True only the first time this provider payment is seen."""
    key = f"top_up:{provider}:{provider_payment_id}"
    account = await workspace_account(session, tenant_id)
    posted = await transfer(
        session,
        debit=system_account_for(SystemAccount.TOP_UPS, key),
        credit=account.id,
        amount=amount,
        key=key,
        kind=TransferKind.TOP_UP,
        memo=f"top-up {provider} {provider_payment_id}",
    )
    return not posted.replayed


async def adjust(
    session: AsyncSession, tenant_id: UUID, actor_id: UUID, amount: int, reason: str, idempotency_key: str
) -> tuple[Posted, int]:
    """A manual correction: positive credits the workspace, negative debits it. Answers the
    transfer and the workspace's balance after it."""
    if amount == 0:
        raise errors.InvalidInput("amount: must not be zero")
    account = await workspace_account(session, tenant_id)
    key = f"adjustment:{tenant_id}:{idempotency_key}"
    system = system_account_for(SystemAccount.ADJUSTMENTS, key)
    debit, credit = (system, account.id) if amount > 0 else (account.id, system)
    posted = await transfer(
        session,
        debit=debit,
        credit=credit,
        amount=abs(amount),
        key=key,
        kind=TransferKind.ADJUSTMENT,
        memo=reason,
        actor_id=actor_id,
    )
    if not posted.replayed:
        log.info(
            "adjustment of %+d credit units to workspace %s by user %s: %s",
            amount,
            tenant_id,
            actor_id,
            reason,
        )
    return posted, posted.credit_balance if amount > 0 else posted.debit_balance


# -- statement ---------------------------------------------------------------------------


async def statement(session: AsyncSession, tenant_id: UUID, before_seq: int | None, limit: int) -> Statement:
    account = await workspace_account(session, tenant_id)
    other = aliased(Line)
    other_account = aliased(Account)
    query = (
        select(Line, Transfer.kind, Transfer.memo, other_account)
        .join(Transfer, Transfer.id == Line.transfer_id)
        .join(other, and_(other.transfer_id == Line.transfer_id, other.account_id != Line.account_id))
        .join(other_account, other_account.id == other.account_id)
        .where(Line.account_id == account.id)
        .order_by(Line.seq.desc())
        .limit(limit + 1)
    )
    if before_seq is not None:
        query = query.where(Line.seq < before_seq)
    rows = (await session.execute(query)).all()
    items = [
        StatementLine(
            seq=line.seq,
            transfer_id=line.transfer_id,
            kind=kind,
            memo=memo,
            amount=line.amount,
            balance_after=line.balance_after,
            counterparty=Counterparty(
                account_id=party.id,
                kind="workspace" if party.tenant_id else "system",
                name=party.system_code,
            ),
            created_at=line.created_at,
        )
        for line, kind, memo, party in rows[:limit]
    ]
    return Statement(account_id=account.id, balance=account.balance, items=items, has_more=len(rows) > limit)


# -- reconciliation ----------------------------------------------------------------------


class Discrepancy(msgspec.Struct, frozen=True):
    account_id: UUID | None  # None: the whole ledger (lines do not sum to zero)
    cached_balance: int
    sum_of_lines: int
    detail: str


async def check_ledger(session: AsyncSession) -> list[Discrepancy]:
    """Every cached balance equals the sum of its account's lines, every account's line count
    matches its sequence, every transfer's lines cancel out, and all lines sum to zero."""
    sums = (
        select(
            Line.account_id, func.coalesce(func.sum(Line.amount), 0).label("total"), func.count().label("n")
        )
        .group_by(Line.account_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Account.id,
            Account.balance,
            Account.last_seq,
            func.coalesce(sums.c.total, 0),
            func.coalesce(sums.c.n, 0),
        )
        .outerjoin(sums, sums.c.account_id == Account.id)
        .where(
            or_(
                Account.balance != func.coalesce(sums.c.total, 0),
                Account.last_seq != func.coalesce(sums.c.n, 0),
            )
        )
    )
    found = [
        Discrepancy(
            account_id,
            balance,
            total,
            f"cached balance {balance}, lines sum to {total}; {n} lines, seq {seq}",
        )
        for account_id, balance, seq, total, n in rows
    ]
    unbalanced = await session.execute(
        select(Line.transfer_id, func.sum(Line.amount), func.count())
        .group_by(Line.transfer_id)
        .having(or_(func.sum(Line.amount) != 0, func.count() != 2))
    )
    found += [
        Discrepancy(None, 0, total, f"transfer {transfer_id} has {n} lines summing to {total}")
        for transfer_id, total, n in unbalanced
    ]
    bare = await session.scalars(select(Transfer.id).where(~exists().where(Line.transfer_id == Transfer.id)))
    found += [Discrepancy(None, 0, 0, f"transfer {transfer_id} has no lines") for transfer_id in bare]
    total = await session.scalar(select(func.coalesce(func.sum(Line.amount), 0)))
    if total:
        found.append(Discrepancy(None, 0, total, f"all lines sum to {total}, not zero"))
    return found


@functools.cache
def _default_settings() -> Settings:
    return Settings.from_env()
