"""The ledger: accounts with cached balances, transfers, and their immutable double-entry lines."""

from __future__ import annotations

import enum
import hashlib
from uuid import UUID, uuid5

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mathia.db import Base

# Amounts are integers in the smallest unit: a millionth of a credit.
CREDIT_UNITS = 1_000_000


class SystemAccount(enum.StrEnum):
    """Accounts outside any workspace; they may go below zero (they issue or absorb credits)."""

    GRANTS = "grants"
    TOP_UPS = "top_ups"
    AI_USAGE = "ai_usage"
    ADJUSTMENTS = "adjustments"


# Each system account is split into shards, so that every AI charge in every workspace
# does not queue on one row lock. A key always maps to the same shard (retries match).
SYSTEM_SHARDS = 8
_SYSTEM_NAMESPACE = UUID("6d617468-6961-4c65-9467-657273797374")


def system_account_id(code: SystemAccount, shard: int) -> UUID:
    """Fixed ids: the migration creates these rows, code computes them without a query."""
    return uuid5(_SYSTEM_NAMESPACE, f"{code.value}:{shard}")


def system_account_for(code: SystemAccount, key: str) -> UUID:
    shard = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest()) % SYSTEM_SHARDS
    return system_account_id(code, shard)


class TransferKind(enum.StrEnum):
    GRANT = "grant"
    TOP_UP = "top_up"
    AI_USAGE = "ai_usage"
    ADJUSTMENT = "adjustment"
    TRANSFER = "transfer"


class Account(Base):
    """A workspace's credit account (tenant_id set) or a shard of a system account (system_code set)."""

    __tablename__ = "wallet_account"
    __table_args__ = (
        UniqueConstraint("system_code", "shard"),
        CheckConstraint("(tenant_id IS NULL) <> (system_code IS NULL)", name="owner"),
        # The last line of defence: no code path can overdraw a workspace account.
        CheckConstraint("allow_negative OR balance >= 0", name="not_overdrawn"),
    )

    tenant_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), unique=True, default=None
    )
    system_code: Mapped[str | None] = mapped_column(String(32), default=None)
    shard: Mapped[int] = mapped_column(default=0)
    allow_negative: Mapped[bool] = mapped_column(default=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    # Number of lines so far; each line takes the next value under the row lock, so the
    # statement's order and running balances are exactly the order the balance moved in.
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class Transfer(Base):
    __tablename__ = "wallet_transfer"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    debit_account_id: Mapped[UUID] = mapped_column(ForeignKey("wallet_account.id", ondelete="CASCADE"))
    credit_account_id: Mapped[UUID] = mapped_column(ForeignKey("wallet_account.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[TransferKind] = mapped_column(String(16))
    memo: Mapped[str] = mapped_column(String(500), default="")
    # Who asked for it (adjustments are audited by this); None for the system itself.
    actor_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )


class Line(Base):
    """One side of a transfer. Never updated or deleted while its account exists."""

    __tablename__ = "wallet_line"
    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        Index("ix_wallet_line_transfer_id", "transfer_id"),
    )

    transfer_id: Mapped[UUID] = mapped_column(ForeignKey("wallet_transfer.id", ondelete="CASCADE"))
    account_id: Mapped[UUID] = mapped_column(ForeignKey("wallet_account.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # negative on the debited side
    balance_after: Mapped[int] = mapped_column(BigInteger)
