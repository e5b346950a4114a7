"""memory: the user's own WhatsApp number on the profile

Revision ID: memory_0002
Revises: memory_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "memory_0002"
down_revision: str | Sequence[str] | None = "memory_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user_profile") as batch:
        batch.add_column(sa.Column("whatsapp", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("user_profile") as batch:
        batch.drop_column("whatsapp")
