"""memory: profiles, goals, notes, documents, chunks and their full-text indexes

Revision ID: memory_0001
Revises: 0001
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "memory_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("memory",)
depends_on: str | Sequence[str] | None = None

GUID = advanced_alchemy.types.guid.GUID(length=16)
UTC = advanced_alchemy.types.datetime.DateTimeUTC(timezone=True)

# Search text of each table: a note is its body; a chunk adds its heading or page.
SEARCHED = {"note": ("body",), "document_chunk": ("section", "body")}


def _audit() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", GUID, primary_key=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    ]


def _user(table: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "user_id",
        GUID,
        sa.ForeignKey("user_account.id", name=f"fk_{table}_user_id_user_account", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    )


def _fk(table: str, column: str, target: str, ondelete: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        column,
        GUID,
        sa.ForeignKey(f"{target}.id", name=f"fk_{table}_{column}_{target}", ondelete=ondelete),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "user_profile",
        *_audit(),
        _user("user_profile"),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("locale", sa.String(35), nullable=False),
        sa.Column("role_title", sa.String(100), nullable=False),
    )
    op.create_table(
        "user_goals",
        *_audit(),
        _user("user_goals"),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("focus_areas", sa.JSON(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("answer_style", sa.String(16), nullable=False),
    )
    op.create_table(
        "note",
        *_audit(),
        _fk("note", "tenant_id", "workspace", "CASCADE", nullable=False),
        _fk("note", "room_id", "room", "CASCADE", nullable=False),
        _fk("note", "author_id", "user_account", "SET NULL"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("by_assistant", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_note_tenant_id", "note", ["tenant_id"])
    op.create_index("ix_note_tenant_room", "note", ["tenant_id", "room_id"])
    op.create_index("ix_note_author_id", "note", ["author_id"])
    op.create_table(
        "document",
        *_audit(),
        _fk("document", "tenant_id", "workspace", "CASCADE", nullable=False),
        _fk("document", "room_id", "room", "CASCADE"),
        _fk("document", "uploaded_by", "user_account", "SET NULL"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_document_tenant_id", "document", ["tenant_id"])
    op.create_index("ix_document_tenant_room", "document", ["tenant_id", "room_id"])
    op.create_table(
        "document_chunk",
        *_audit(),
        _fk("document_chunk", "tenant_id", "workspace", "CASCADE", nullable=False),
        _fk("document_chunk", "document_id", "document", "CASCADE", nullable=False),
        _fk("document_chunk", "room_id", "room", "CASCADE"),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(255), nullable=False),
    )
    op.create_index("ix_document_chunk_tenant_id", "document_chunk", ["tenant_id"])
    op.create_index("ix_document_chunk_tenant_room", "document_chunk", ["tenant_id", "room_id"])
    op.create_index("ix_document_chunk_document_id", "document_chunk", ["document_id"])

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_search()
    else:
        _sqlite_search()


def _postgresql_search() -> None:
    for table, columns in SEARCHED.items():
        text = " || ' ' || ".join(f"coalesce({column}, '')" for column in columns)
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN search tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('english', {text})) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search)")
    # Vector search needs pgvector; without it (or without the right to create it) full-text serves alone.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first() is None:
        return
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        return
    for table in SEARCHED:
        op.execute(f"ALTER TABLE {table} ADD COLUMN embedding vector")


# SQLite: each FTS5 row also carries a `scope` token naming where the row may be read, so a
# search reads only one room's (or one workspace's) postings instead of every tenant's. The
# tokens are hex ids ending in "k", a letter no Porter rule strips. Notes: the workspace;
# chunks: the room, or the workspace for workspace-wide documents.
_SCOPE = {
    "note": "'t' || hex(new.tenant_id) || 'k'",
    "document_chunk": "CASE WHEN new.room_id IS NULL THEN 'w' || hex(new.tenant_id) ELSE 'r' || hex(new.room_id) END"
    " || 'k'",
}


def _sqlite_search() -> None:
    # Standalone FTS5 tables keyed by the row's UUID: base-table rowids are not stable across VACUUM.
    for table, columns in SEARCHED.items():
        listed = ", ".join(columns)
        insert = (
            f"INSERT INTO {table}_fts ({listed}, scope, item_id) "
            f"VALUES ({', '.join(f'new.{column}' for column in columns)}, {_SCOPE[table]}, new.id)"
        )
        op.execute(
            f"CREATE VIRTUAL TABLE {table}_fts USING fts5({listed}, scope, item_id UNINDEXED, "
            "tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        op.execute(f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN {insert}; END")
        op.execute(
            f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {listed}, tenant_id, room_id ON {table} BEGIN "
            f"DELETE FROM {table}_fts WHERE item_id = old.id; {insert}; END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
            f"DELETE FROM {table}_fts WHERE item_id = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for table in SEARCHED:
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    for table in ("document_chunk", "document", "note", "user_goals", "user_profile"):
        op.drop_table(table)
