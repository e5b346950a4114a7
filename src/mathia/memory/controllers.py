"""HTTP routes: onboarding (profile, goals), room notes, and room or workspace documents."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.auth.models import User
from mathia.errors import InvalidInput, TooLarge
from mathia.memory import profiles, services
from mathia.memory.embeddings import embedder_from
from mathia.memory.schemas import DocumentOut, Goals, NoteCreate, NoteOut, NoteUpdate, ProfileIn, ProfileOut
from mathia.runtime import Runtime

# Room for the multipart envelope (boundaries, part headers) around the file itself.
_MULTIPART_OVERHEAD = 16 * 1024


class MemoryController(Controller):
    path = "/api"
    tags = ["memory"]

    @get("/me/profile")
    async def get_profile(
        self, current_user: NamedDependency[User], db_session: NamedDependency[AsyncSession]
    ) -> ProfileOut:
        return await profiles.get_profile(db_session, current_user)

    @put("/me/profile")
    async def put_profile(
        self,
        data: JSONBody[ProfileIn],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> ProfileOut:
        return await profiles.put_profile(db_session, current_user, data)

    @get("/me/goals")
    async def get_goals(
        self, current_user: NamedDependency[User], db_session: NamedDependency[AsyncSession]
    ) -> Goals:
        return await profiles.get_goals(db_session, current_user.id)

    @put("/me/goals")
    async def put_goals(
        self,
        data: JSONBody[Goals],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> Goals:
        return await profiles.put_goals(db_session, current_user.id, data)

    @get("/rooms/{room_id:uuid}/notes")
    async def list_notes(
        self,
        room_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> list[NoteOut]:
        return [
            services.note_out(note)
            for note in await services.list_notes(db_session, room_id, current_user.id)
        ]

    @post("/rooms/{room_id:uuid}/notes")
    async def create_note(
        self,
        room_id: FromPath[UUID],
        data: JSONBody[NoteCreate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> NoteOut:
        note = await services.create_note(
            db_session,
            room_id,
            current_user.id,
            data.body,
            data.priority,
            embedder=embedder_from(runtime.settings, runtime.http),
        )
        return services.note_out(note)

    @patch("/notes/{note_id:uuid}")
    async def update_note(
        self,
        note_id: FromPath[UUID],
        data: JSONBody[NoteUpdate],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> NoteOut:
        note = await services.update_note(
            db_session,
            note_id,
            current_user.id,
            data.body,
            data.priority,
            embedder_from(runtime.settings, runtime.http),
        )
        return services.note_out(note)

    @delete("/notes/{note_id:uuid}")
    async def delete_note(
        self,
        note_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        await services.delete_note(db_session, note_id, current_user.id)

    @post("/rooms/{room_id:uuid}/documents")
    async def upload_room_document(
        self,
        room_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> DocumentOut:
        return await _upload(request, current_user, db_session, runtime, room_id=room_id)

    @get("/rooms/{room_id:uuid}/documents")
    async def list_room_documents(
        self,
        room_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> list[DocumentOut]:
        documents = await services.list_room_documents(db_session, room_id, current_user.id)
        return [services.document_out(document) for document in documents]

    @post("/workspaces/{workspace_id:uuid}/documents")
    async def upload_workspace_document(
        self,
        workspace_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> DocumentOut:
        return await _upload(request, current_user, db_session, runtime, workspace_id=workspace_id)

    @get("/workspaces/{workspace_id:uuid}/documents")
    async def list_workspace_documents(
        self,
        workspace_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> list[DocumentOut]:
        documents = await services.list_workspace_documents(db_session, workspace_id, current_user.id)
        return [services.document_out(document) for document in documents]

    @delete("/documents/{document_id:uuid}")
    async def delete_document(
        self,
        document_id: FromPath[UUID],
        current_user: NamedDependency[User],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        await services.delete_document(db_session, document_id, current_user.id)


async def _upload(
    request: Request[Any, Any, Any],
    user: User,
    session: AsyncSession,
    runtime: Runtime,
    *,
    room_id: UUID | None = None,
    workspace_id: UUID | None = None,
) -> DocumentOut:
    """Store an uploaded document for a room or, with `workspace_id`, for the whole workspace."""
    upload, data = await _read_upload(request, runtime.settings.max_document_bytes)
    document = await services.add_document(
        session,
        settings=runtime.settings,
        user_id=user.id,
        room_id=room_id,
        workspace_id=workspace_id,
        filename=upload.filename,
        declared_type=upload.content_type,
        data=data,
        embedder=embedder_from(runtime.settings, runtime.http),
    )
    return services.document_out(document)


async def _read_upload(request: Request[Any, Any, Any], limit: int) -> tuple[UploadFile, bytes]:
    """The multipart `file` part and its bytes. A declared length over the limit is refused
    before the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_OVERHEAD:
        raise TooLarge(f"file: larger than the {limit} byte limit")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("file: send the document as multipart/form-data in a part named `file`")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file: missing; send the document in a multipart part named `file`")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"file: larger than the {limit} byte limit")
    return upload, data
