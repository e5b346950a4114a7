"""Notes and documents: who may read, write and delete them, and keeping their search data.

A room's notes and documents are reachable only through a room the caller can see
(`visible_room`, 404 otherwise); workspace documents only through a membership."""

from __future__ import annotations

import hashlib
import logging
from pathlib import PurePath
from typing import Literal
from uuid import UUID

import anyio
from sqlalchemy import case, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.config import Settings
from mathia.errors import Conflict, Forbidden, InvalidInput, NotFound, TooLarge
from mathia.memory import search
from mathia.memory.embeddings import Embedder, EmbeddingError
from mathia.memory.extract import extract
from mathia.memory.models import Document, DocumentChunk, Note, NotePriority
from mathia.memory.schemas import MAX_NOTE_CHARS, DocumentOut, NoteOut
from mathia.memory.text import Chunk, chunk_sections
from mathia.rooms.models import Room
from mathia.rooms.services import visible_room
from mathia.tenants.models import Membership, Role
from mathia.tenants.services import workspace_member

log = logging.getLogger(__name__)

_NOTE_NOT_FOUND = "note not found"
_DOCUMENT_NOT_FOUND = "document not found"


def note_out(note: Note) -> NoteOut:
    return NoteOut(
        id=note.id,
        workspace_id=note.tenant_id,
        room_id=note.room_id,
        body=note.body,
        priority=NotePriority(note.priority),
        author_id=note.author_id,
        by_assistant=note.by_assistant,
        created_at=note.created_at,
        updated_at=note.updated_at,
    )


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        workspace_id=document.tenant_id,
        room_id=document.room_id,
        name=document.name,
        content_type=document.content_type,
        size_bytes=document.size_bytes,
        chunk_count=document.chunk_count,
        uploaded_by=document.uploaded_by,
        created_at=document.created_at,
    )


async def _writer_room(session: AsyncSession, room_id: UUID, user_id: UUID) -> Room:
    """A room the caller can see and write to: guests read, members and up write."""
    room, _ = await visible_room(session, room_id, user_id)
    await workspace_member(session, room.tenant_id, user_id, at_least=Role.MEMBER)
    return room


async def _is_admin(session: AsyncSession, tenant_id: UUID, user_id: UUID) -> bool:
    role = await session.scalar(
        select(Membership.role).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    return role is not None and Role(role).is_admin


# Notes


async def list_notes(session: AsyncSession, room_id: UUID, user_id: UUID) -> list[Note]:
    """The notes this room's assistant uses for this caller: the room's own and the caller's shared ones."""
    room, _ = await visible_room(session, room_id, user_id)
    high_first = case((Note.priority == NotePriority.HIGH, 0), else_=1)
    statement = (
        select(Note)
        .where(search.visible_notes(room.tenant_id, room.id, user_id))
        .order_by(high_first, Note.created_at.desc())
    )
    return list((await session.scalars(statement)).all())


async def create_note(
    session: AsyncSession,
    room_id: UUID,
    user_id: UUID,
    body: str,
    priority: NotePriority = NotePriority.NORMAL,
    *,
    by_assistant: bool = False,
    embedder: Embedder | None = None,
) -> Note:
    body = body.strip()
    if not body:
        raise InvalidInput("body: must not be empty")
    if len(body) > MAX_NOTE_CHARS:
        raise InvalidInput(f"body: longer than {MAX_NOTE_CHARS} characters")
    room = await _writer_room(session, room_id, user_id)
    note = Note(
        tenant_id=room.tenant_id,
        room_id=room.id,
        author_id=user_id,
        body=body,
        priority=priority,
        by_assistant=by_assistant,
    )
    session.add(note)
    await session.flush()
    await _embed(session, "note", [(note.id, body)], embedder)
    return note


async def _editable_note(session: AsyncSession, note_id: UUID, user_id: UUID) -> Note:
    """A note the caller can see (through its room) and change: its author's, or any for an admin."""
    note = await session.scalar(
        select(Note)
        .join(Membership, Membership.tenant_id == Note.tenant_id)
        .where(Note.id == note_id, Membership.user_id == user_id)
    )
    if note is None:
        raise NotFound(_NOTE_NOT_FOUND)
    try:
        await visible_room(session, note.room_id, user_id)
    except NotFound:
        raise NotFound(_NOTE_NOT_FOUND) from None
    if note.author_id != user_id and not await _is_admin(session, note.tenant_id, user_id):
        raise Forbidden("only the note's author or a workspace admin can change it")
    return note


async def update_note(
    session: AsyncSession,
    note_id: UUID,
    user_id: UUID,
    body: str | None,
    priority: NotePriority | None,
    embedder: Embedder | None = None,
) -> Note:
    if body is not None and not body.strip():
        raise InvalidInput("body: must not be empty")
    note = await _editable_note(session, note_id, user_id)
    if priority is not None:
        note.priority = priority
    if body is not None:
        note.body = body.strip()
    await session.flush()
    if body is not None:
        await _embed(session, "note", [(note.id, note.body)], embedder)
    return note


async def delete_note(session: AsyncSession, note_id: UUID, user_id: UUID) -> None:
    note = await _editable_note(session, note_id, user_id)
    await session.delete(note)
    await session.flush()


# Documents


def _document_name(filename: str | None) -> str:
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return name[:255] or "document"


async def add_document(
    session: AsyncSession,
    *,
    settings: Settings,
    user_id: UUID,
    filename: str | None,
    declared_type: str | None,
    data: bytes,
    room_id: UUID | None = None,
    workspace_id: UUID | None = None,
    embedder: Embedder | None = None,
) -> Document:
    """Store a document in a room (`room_id`) or a whole workspace (`workspace_id`, admins only),
    split into chunks and indexed for search."""
    if room_id is not None:
        tenant_id = (await _writer_room(session, room_id, user_id)).tenant_id
    elif workspace_id is not None:
        tenant_id = (await workspace_member(session, workspace_id, user_id, at_least=Role.ADMIN)).tenant_id
    else:
        raise ValueError("a document belongs to a room or a workspace")
    if len(data) > settings.max_document_bytes:
        raise TooLarge(f"file: larger than the {settings.max_document_bytes} byte limit")
    name = _document_name(filename)
    digest = hashlib.sha256(data).hexdigest()
    same_place = Document.room_id == room_id if room_id is not None else Document.room_id.is_(None)
    duplicate = await session.scalar(
        select(Document.id).where(Document.tenant_id == tenant_id, same_place, Document.sha256 == digest)
    )
    if duplicate is not None:
        raise Conflict(f"file: the same content is already stored here (document {duplicate})")
    # Parsing a PDF and counting tokens are CPU work: keep them off the event loop.
    extracted = await anyio.to_thread.run_sync(extract, name, declared_type, data)
    chunks: list[Chunk] = await anyio.to_thread.run_sync(
        chunk_sections, extracted.sections, settings.document_chunk_tokens
    )
    document = Document(
        tenant_id=tenant_id,
        room_id=room_id,
        name=name,
        content_type=extracted.content_type,
        size_bytes=len(data),
        sha256=digest,
        chunk_count=len(chunks),
        uploaded_by=user_id,
    )
    session.add(document)
    await session.flush()
    rows = [
        DocumentChunk(
            tenant_id=tenant_id,
            document_id=document.id,
            room_id=room_id,
            ordinal=ordinal,
            section=chunk.section,
            body=chunk.body,
            token_count=chunk.tokens,
        )
        for ordinal, chunk in enumerate(chunks)
    ]
    session.add_all(rows)
    await session.flush()
    await _embed(
        session, "document_chunk", [(row.id, f"{row.section}\n{row.body}") for row in rows], embedder
    )
    return document


async def list_room_documents(session: AsyncSession, room_id: UUID, user_id: UUID) -> list[Document]:
    room, _ = await visible_room(session, room_id, user_id)
    statement = select(Document).where(Document.tenant_id == room.tenant_id, Document.room_id == room.id)
    return list((await session.scalars(statement.order_by(Document.created_at.desc()))).all())


async def list_workspace_documents(
    session: AsyncSession, workspace_id: UUID, user_id: UUID
) -> list[Document]:
    await workspace_member(session, workspace_id, user_id)
    statement = select(Document).where(Document.tenant_id == workspace_id, Document.room_id.is_(None))
    return list((await session.scalars(statement.order_by(Document.created_at.desc()))).all())


async def delete_document(session: AsyncSession, document_id: UUID, user_id: UUID) -> None:
    """Room documents: their uploader or an admin; workspace documents: an admin."""
    document = await session.scalar(
        select(Document)
        .join(Membership, Membership.tenant_id == Document.tenant_id)
        .where(Document.id == document_id, Membership.user_id == user_id)
    )
    if document is None:
        raise NotFound(_DOCUMENT_NOT_FOUND)
    if document.room_id is not None:
        try:
            await visible_room(session, document.room_id, user_id)
        except NotFound:
            raise NotFound(_DOCUMENT_NOT_FOUND) from None
    uploader = document.room_id is not None and document.uploaded_by == user_id
    if not uploader and not await _is_admin(session, document.tenant_id, user_id):
        raise Forbidden("only the uploader or a workspace admin can delete this document")
    # Delete chunks in one statement first: on SQLite each chunk's FTS row goes with it (trigger).
    await session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
    await session.delete(document)
    await session.flush()


async def _embed(
    session: AsyncSession,
    table: Literal["note", "document_chunk"],
    rows: list[tuple[UUID, str]],
    embedder: Embedder | None,
) -> None:
    """Add embeddings when vector search is on; full-text search does not need them, so a
    provider failure is logged and the row stays searchable by text."""
    if embedder is None or not rows or not await search.vector_search_ready(session):
        return
    try:
        vectors = await embedder.embed([text for _, text in rows])
    except EmbeddingError as exc:
        log.warning("embedding %d %s rows failed: %s", len(rows), table, exc)
        return
    await search.store_embeddings(
        session, table, [(row_id, vector) for (row_id, _), vector in zip(rows, vectors, strict=True)]
    )
