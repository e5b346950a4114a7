"""Retrieval: the notes and document chunks that best answer a query, fitted into a token budget.

Full-text search runs everywhere (FTS5 on SQLite, a GIN-indexed tsvector on PostgreSQL);
vector search joins in when PostgreSQL has pgvector and an embedding provider is set, and
the two rankings are fused. Every query carries the isolation filter in its WHERE clause:
the workspace, and the room or the author as a note's scope says.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import msgspec
from advanced_alchemy.types import GUID
from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableClause

from mathia.memory.embeddings import Embedder, EmbeddingError
from mathia.memory.models import Document, DocumentChunk, Note, NotePriority
from mathia.memory.text import search_terms
from mathia.rooms.models import Room
from mathia.tokens import count_tokens

log = logging.getLogger(__name__)

CANDIDATES = 20  # per list and per search method, before fusion
PINNED = 10  # high-priority notes offered even when they do not match the query
EXPANDED_DOCUMENTS = 2  # documents whose other chunks may fill the budget left after the hits
RRF_K = 60  # the usual reciprocal-rank-fusion constant: flattens the head of each list


class Snippet(msgspec.Struct, frozen=True):
    """One piece of context for the prompt, with where it came from."""

    kind: Literal["note", "document"]
    id: UUID
    source: str  # "note", or the document's name with its section or page
    text: str
    score: float
    tokens: int


def visible_notes(tenant_id: UUID, room_id: UUID, user_id: UUID | None) -> ColumnElement[bool]:
    """Notes a room may use: its own, plus the asking user's high-priority notes written in the
    workspace's public rooms (a private room's notes never leave it)."""
    public_rooms = select(Room.id).where(Room.tenant_id == tenant_id, Room.private.is_(False))
    own_room = Note.room_id == room_id
    if user_id is None:
        return and_(Note.tenant_id == tenant_id, own_room)
    shared = and_(
        Note.priority == NotePriority.HIGH, Note.author_id == user_id, Note.room_id.in_(public_rooms)
    )
    return and_(Note.tenant_id == tenant_id, or_(own_room, shared))


def visible_chunks(tenant_id: UUID, room_id: UUID) -> ColumnElement[bool]:
    """Chunks a room may use: its own documents' and the workspace-wide documents'."""
    return and_(
        DocumentChunk.tenant_id == tenant_id,
        or_(DocumentChunk.room_id == room_id, DocumentChunk.room_id.is_(None)),
    )


async def retrieve(
    session: AsyncSession,
    *,
    tenant_id: UUID,
    room_id: UUID,
    user_id: UUID | None,
    query: str,
    token_budget: int,
    embedder: Embedder | None = None,
) -> list[Snippet]:
    """The most relevant notes and chunks for `query`, best first, whose `tokens` sum to at most
    `token_budget`. High-priority notes come first whether or not they match. The caller has
    already checked that `user_id` may see the room."""
    if token_budget <= 0:
        return []
    terms = search_terms(query)
    note_filter = visible_notes(tenant_id, room_id, user_id)
    chunk_filter = visible_chunks(tenant_id, room_id)
    pinned = list(
        (
            await session.scalars(
                select(Note)
                .where(note_filter, Note.priority == NotePriority.HIGH)
                .order_by(Note.created_at.desc())
                .limit(PINNED)
            )
        ).all()
    )
    rankings: list[list[Note | tuple[DocumentChunk, str]]] = []
    if terms:
        rankings.append(list(await full_text_notes(session, tenant_id, note_filter, terms)))
        rankings.append(list(await full_text_chunks(session, tenant_id, room_id, chunk_filter, terms)))
    if embedder is not None and query.strip() and await vector_search_ready(session):
        try:
            vector = (await embedder.embed([query]))[0]
        except EmbeddingError as exc:
            log.warning("query embedding failed, full-text only: %s", exc)
        else:
            rankings.append(await vector_nearest(session, note_filter, chunk_filter, vector))

    scores = fuse([[_key(item) for item in ranking] for ranking in rankings])
    items = {_key(item): item for ranking in rankings for item in ranking}
    ordered = [_note_snippet(note, 1.0) for note in pinned]
    seen = {snippet.id for snippet in ordered}
    ordered += [_snippet(items[key], score) for key, score in scores if key[1] not in seen]
    matched = [items[key] for key, _ in scores if key[0] == "document"]
    ordered += [_snippet(item, 0.0) for item in await _rest_of_documents(session, chunk_filter, matched)]
    return fit(ordered, token_budget)


async def _rest_of_documents(
    session: AsyncSession, where: ColumnElement[bool], matched: Sequence[Note | tuple[DocumentChunk, str]]
) -> list[tuple[DocumentChunk, str]]:
    """The other chunks of the best-matching documents, in document order: what budget is left
    goes to the sections around a hit (a resume's 2020-2024 job answers "in 2021" though no
    word matches it)."""
    chunks = [item for item in matched if isinstance(item, tuple)]
    document_ids = list(dict.fromkeys(chunk.document_id for chunk, _ in chunks))[:EXPANDED_DOCUMENTS]
    if not document_ids:
        return []
    seen = {chunk.id for chunk, _ in chunks}
    rows = await session.execute(
        select(DocumentChunk, Document.name)
        .join(Document, Document.id == DocumentChunk.document_id)
        .where(where, DocumentChunk.document_id.in_(document_ids), DocumentChunk.id.not_in(seen))
        .order_by(DocumentChunk.ordinal)
    )
    rank = {document_id: i for i, document_id in enumerate(document_ids)}
    return sorted(((chunk, name) for chunk, name in rows.all()), key=lambda row: rank[row[0].document_id])


def fuse(rankings: Sequence[Sequence[tuple[str, UUID]]]) -> list[tuple[tuple[str, UUID], float]]:
    """Reciprocal rank fusion: a key's score is the sum of 1/(k + rank) over the lists holding it."""
    scores: dict[tuple[str, UUID], float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def fit(snippets: Sequence[Snippet], token_budget: int) -> list[Snippet]:
    """Greedy, in rank order: a snippet too big for what is left is skipped, a smaller one may follow."""
    chosen, left = [], token_budget
    for snippet in snippets:
        if snippet.tokens <= left:
            chosen.append(snippet)
            left -= snippet.tokens
    return chosen


def format_context(snippets: Sequence[Snippet]) -> str:
    """The snippets as a prompt section, each labelled with its source so answers can cite it."""
    if not snippets:
        return ""
    lines = ["Notes and documents for this conversation (name the document you use):"]
    lines += [f"[{snippet.source}] {snippet.text}" for snippet in snippets]
    return "\n".join(lines)


def _key(item: Note | tuple[DocumentChunk, str]) -> tuple[str, UUID]:
    return ("note", item.id) if isinstance(item, Note) else ("document", item[0].id)


def _snippet(item: Note | tuple[DocumentChunk, str], score: float) -> Snippet:
    if isinstance(item, Note):
        return _note_snippet(item, score)
    chunk, name = item
    source = f"document: {name}" + (f", {chunk.section}" if chunk.section else "")
    # The chunk's own count was taken at upload; only the label is new.
    tokens = chunk.token_count + count_tokens(f"[{source}] \n")
    return Snippet(kind="document", id=chunk.id, source=source, text=chunk.body, score=score, tokens=tokens)


def _note_snippet(note: Note, score: float) -> Snippet:
    # The budget covers the whole line the prompt will carry, label included.
    tokens = count_tokens(f"[note] {note.body}\n")
    return Snippet(kind="note", id=note.id, source="note", text=note.body, score=score, tokens=tokens)


# Full-text search, one implementation per dialect. The FTS5 tables (SQLite) and the
# `search` columns (PostgreSQL) come from the migration, not the ORM models.
_NOTE_FTS = table("note_fts", column("item_id", GUID))
_CHUNK_FTS = table("document_chunk_fts", column("item_id", GUID))


async def full_text_notes(
    session: AsyncSession,
    tenant_id: UUID,
    where: ColumnElement[bool],
    terms: list[str],
    *,
    match_all: bool = False,
) -> Sequence[Note]:
    """Notes matching any of the terms (all of them with `match_all`), best first."""
    statement = select(Note)
    if _dialect(session) == "postgresql":
        search, rank = _tsquery_rank("note", terms, match_all)
        statement = statement.where(where, search).order_by(rank.desc())
    else:
        statement = (
            statement.join(_NOTE_FTS, _NOTE_FTS.c.item_id == Note.id)
            .where(where, _fts_match(_NOTE_FTS, [_scope("t", tenant_id)], terms, match_all))
            .order_by(literal_column("bm25(note_fts)"))
        )
    return (await session.scalars(statement.limit(CANDIDATES))).all()


async def full_text_chunks(
    session: AsyncSession, tenant_id: UUID, room_id: UUID, where: ColumnElement[bool], terms: list[str]
) -> list[tuple[DocumentChunk, str]]:
    statement = select(DocumentChunk, Document.name).join(Document, Document.id == DocumentChunk.document_id)
    if _dialect(session) == "postgresql":
        search, rank = _tsquery_rank("document_chunk", terms)
        statement = statement.where(where, search).order_by(rank.desc())
    else:
        statement = (
            statement.join(_CHUNK_FTS, _CHUNK_FTS.c.item_id == DocumentChunk.id)
            .where(where, _fts_match(_CHUNK_FTS, [_scope("r", room_id), _scope("w", tenant_id)], terms))
            # The heading weighs double: a question naming a section should find it.
            .order_by(literal_column("bm25(document_chunk_fts, 2.0, 1.0, 0.0)"))
        )
    return [(chunk, name) for chunk, name in (await session.execute(statement.limit(CANDIDATES))).all()]


def _scope(kind: str, id_: UUID) -> str:
    """The scope token the migration's triggers write: kind letter, hex id (the tokenizer folds case), "k"."""
    return f"{kind}{id_.hex}k"


def _fts_match(
    fts: TableClause, scopes: list[str], terms: list[str], match_all: bool = False
) -> ColumnElement[bool]:
    """Rows in one of `scopes` holding any (or all) of the terms. Scopes and terms are made of
    word characters only (see search_terms), so quoting each makes a safe FTS5 query."""
    wanted = (" AND " if match_all else " OR ").join(f'"{term}"' for term in terms)
    where = " OR ".join(f'"{scope}"' for scope in scopes)
    return literal_column(fts.name).op("MATCH")(bindparam("fts_query", f"scope : ({where}) AND ({wanted})"))


def _tsquery_rank(
    table: str, terms: list[str], match_all: bool = False
) -> tuple[ColumnElement[bool], ColumnElement[float]]:
    # Any term may match (OR); ts_rank then favours rows holding more of them, normalised by length.
    query = func.to_tsquery("english", bindparam("ts_query", (" & " if match_all else " | ").join(terms)))
    search: ColumnElement[Any] = literal_column(f"{table}.search")
    return search.op("@@")(query), func.ts_rank(search, query, 1)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


# Vector search (PostgreSQL with pgvector only).

_VECTOR_READY: dict[str, bool] = {}


async def vector_search_ready(session: AsyncSession) -> bool:
    """Whether the database can run vector search: PostgreSQL whose `document_chunk` has the
    pgvector `embedding` column the memory migration adds when the extension is available."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    url = bind.engine.url.render_as_string(hide_password=True)
    if url not in _VECTOR_READY:
        _VECTOR_READY[url] = (
            await session.scalar(
                text(
                    "SELECT count(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                    "WHERE a.attrelid IN ('note'::regclass, 'document_chunk'::regclass) "
                    "AND a.attname = 'embedding' AND t.typname = 'vector' AND NOT a.attisdropped"
                )
            )
        ) == 2
    return _VECTOR_READY[url]


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form, cast to `vector` in SQL: no driver adapter needed."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _distance(table: str, vector: Sequence[float]) -> ColumnElement[float]:
    query = text("CAST(:query_vector AS vector)").bindparams(query_vector=vector_literal(vector))
    return literal_column(f"{table}.embedding").op("<=>")(query)  # cosine distance


async def vector_nearest(
    session: AsyncSession,
    note_filter: ColumnElement[bool],
    chunk_filter: ColumnElement[bool],
    vector: Sequence[float],
) -> list[Note | tuple[DocumentChunk, str]]:
    """Notes and chunks nearest to `vector`, in one ranking: distances compare across both
    (unlike full-text scores), so a far note never ties a near chunk."""
    note_distance = _distance("note", vector).label("distance")
    notes = (
        select(Note, note_distance)
        .where(note_filter, literal_column("note.embedding").is_not(None))
        .order_by(note_distance)
        .limit(CANDIDATES)
    )
    chunk_distance = _distance("document_chunk", vector).label("distance")
    chunks = (
        select(DocumentChunk, Document.name, chunk_distance)
        .join(Document, Document.id == DocumentChunk.document_id)
        .where(chunk_filter, literal_column("document_chunk.embedding").is_not(None))
        .order_by(chunk_distance)
        .limit(CANDIDATES)
    )
    found: list[tuple[float, Note | tuple[DocumentChunk, str]]] = [
        (distance, note) for note, distance in await session.execute(notes)
    ]
    found += [(distance, (chunk, name)) for chunk, name, distance in await session.execute(chunks)]
    found.sort(key=lambda pair: pair[0])
    return [item for _, item in found[:CANDIDATES]]


async def store_embeddings(
    session: AsyncSession,
    table: Literal["note", "document_chunk"],
    rows: Sequence[tuple[UUID, Sequence[float]]],
) -> None:
    """Write embeddings for rows just flushed (PostgreSQL with pgvector only)."""
    for row_id, vector in rows:
        await session.execute(
            text(
                f"UPDATE {table} SET embedding = CAST(:v AS vector) WHERE id = :id"
            ),  # table is one of two fixed names
            {"v": vector_literal(vector), "id": row_id},
        )
