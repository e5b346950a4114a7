"""moderation: flags (one per message), mutes and per-workspace policies

Revision ID: moderation_0001
Revises: 0001
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "moderation_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("moderation",)
depends_on: str | Sequence[str] | None = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
UTC = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)


def _audit() -> list[sa.Column[object]]:
    return [
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "moderation_flag",
        sa.Column("id", GUID, nullable=False),
        sa.Column("message_id", GUID, nullable=False),
        sa.Column("room_id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_moderation_flag_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["room.id"], name=op.f("fk_moderation_flag_room_id_room"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["workspace.id"],
            name=op.f("fk_moderation_flag_tenant_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_moderation_flag_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_flag")),
        sa.UniqueConstraint("message_id", name=op.f("uq_moderation_flag_message_id")),
    )
    with op.batch_alter_table("moderation_flag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_flag_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_moderation_flag_user_state", ["tenant_id", "user_id", "state"], unique=False
        )

    op.create_table(
        "moderation_mute",
        sa.Column("id", GUID, nullable=False),
        sa.Column("user_id", GUID, nullable=False),
        sa.Column("until", UTC, nullable=True),
        sa.Column("tenant_id", GUID, nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["workspace.id"],
            name=op.f("fk_moderation_mute_tenant_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_moderation_mute_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_mute")),
        sa.UniqueConstraint("tenant_id", "user_id", name=op.f("uq_moderation_mute_tenant_id")),
    )
    with op.batch_alter_table("moderation_mute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_mute_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "moderation_policy",
        sa.Column("id", GUID, nullable=False),
        sa.Column("flag_limit", sa.Integer(), nullable=False),
        sa.Column("mute_seconds", sa.Integer(), nullable=False),
        sa.Column("tenant_id", GUID, nullable=False),
        *_audit(),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["workspace.id"],
            name=op.f("fk_moderation_policy_tenant_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_policy")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_moderation_policy_tenant_id")),
    )
    with op.batch_alter_table("moderation_policy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_moderation_policy_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("moderation_policy")
    op.drop_table("moderation_mute")
    op.drop_table("moderation_flag")
