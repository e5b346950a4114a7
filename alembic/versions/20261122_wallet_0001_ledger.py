"""wallet: accounts, transfers and lines of the credit ledger, with the system accounts

Revision ID: wallet_0001
Revises: 0001
"""

import datetime as dt
from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

from mathia.wallet.models import SystemAccount, system_account_id

revision: str = "wallet_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("wallet",)
depends_on: str | Sequence[str] | None = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
UTC = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)
# Frozen here: a later system account or shard count needs its own migration.
SYSTEM_CODES = ("grants", "top_ups", "ai_usage", "adjustments")
SHARDS = 8


def _audit() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    ]


def upgrade() -> None:
    account = op.create_table(
        "wallet_account",
        sa.Column("id", GUID, nullable=False),
        sa.Column("tenant_id", GUID, nullable=True),
        sa.Column("system_code", sa.String(length=32), nullable=True),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("allow_negative", sa.Boolean(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        *_audit(),
        sa.CheckConstraint(
            "(tenant_id IS NULL) <> (system_code IS NULL)", name=op.f("ck_wallet_account_owner")
        ),
        sa.CheckConstraint("allow_negative OR balance >= 0", name=op.f("ck_wallet_account_not_overdrawn")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["workspace.id"],
            name=op.f("fk_wallet_account_tenant_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_account")),
        sa.UniqueConstraint("system_code", "shard", name=op.f("uq_wallet_account_system_code")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_wallet_account_tenant_id")),
    )
    op.create_table(
        "wallet_transfer",
        sa.Column("id", GUID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("debit_account_id", GUID, nullable=False),
        sa.Column("credit_account_id", GUID, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("actor_id", GUID, nullable=True),
        *_audit(),
        sa.CheckConstraint("amount > 0", name=op.f("ck_wallet_transfer_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_wallet_transfer_two_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user_account.id"],
            name=op.f("fk_wallet_transfer_actor_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["wallet_account.id"],
            name=op.f("fk_wallet_transfer_credit_account_id_wallet_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["wallet_account.id"],
            name=op.f("fk_wallet_transfer_debit_account_id_wallet_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_transfer")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_wallet_transfer_idempotency_key")),
    )
    op.create_table(
        "wallet_line",
        sa.Column("id", GUID, nullable=False),
        sa.Column("transfer_id", GUID, nullable=False),
        sa.Column("account_id", GUID, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["wallet_account.id"],
            name=op.f("fk_wallet_line_account_id_wallet_account"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["wallet_transfer.id"],
            name=op.f("fk_wallet_line_transfer_id_wallet_transfer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_line")),
        sa.UniqueConstraint("account_id", "seq", name=op.f("uq_wallet_line_account_id")),
    )
    op.create_index("ix_wallet_line_transfer_id", "wallet_line", ["transfer_id"])

    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        account,
        [
            {
                "id": system_account_id(SystemAccount(code), shard),
                "system_code": code,
                "shard": shard,
                "allow_negative": True,
                "balance": 0,
                "last_seq": 0,
                "created_at": now,
                "updated_at": now,
            }
            for code in SYSTEM_CODES
            for shard in range(SHARDS)
        ],
    )


def downgrade() -> None:
    op.drop_table("wallet_line")
    op.drop_table("wallet_transfer")
    op.drop_table("wallet_account")
