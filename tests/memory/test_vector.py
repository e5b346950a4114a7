"""The vector path on a real PostgreSQL with pgvector: embeddings stored as notes and documents
are written, vector search finding what shares no word with the question, fused with
full-text, and never crossing a workspace or a private room.

The fake embeddings endpoint maps words to a few concepts (a stand-in for a model's sense of
meaning), so "annual leave" lands near "vacation days" though full-text cannot match them."""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from mathia.app import create_app
from mathia.config import Settings
from mathia.connectors.testing import serve
from mathia.db import database_config
from mathia.memory.embeddings import OpenAIEmbeddings
from mathia.memory.search import Snippet, retrieve, vector_search_ready
from mathia.memory.services import create_note
from tests import SECRET_KEY
from tests.client import sign_up
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.embeddings import API_KEY, FakeEmbeddings
from tests.memory.conftest import Seed

CONCEPTS = [
    {"vacation", "holiday", "holidays", "leave", "pto", "off"},
    {"car", "sedan", "vehicle", "parking", "park", "drive"},
    {"salary", "pay", "paid", "wage", "wages", "payroll", "earn"},
    {"dog", "dogs", "puppy", "pet", "pets"},
]


def concept_vector(passage: str) -> list[float]:
    """One dimension per concept, counting its words, plus a small constant one (never all zero)."""
    words = re.findall(r"\w+", passage.lower())
    counts = [float(sum(word in concept for word in words)) for concept in CONCEPTS] + [0.1]
    norm = math.sqrt(sum(c * c for c in counts))
    return [c / norm for c in counts]


HANDBOOK = """# Time away
Every employee gets 25 vacation days a year, and public holidays on top.

# Getting here
Register your sedan at reception to use the garage.

# Money
Payroll runs on the 25th; wages arrive two days later.
"""


@pytest.fixture(scope="module")
def embeddings_url() -> Iterator[str]:
    with serve(FakeEmbeddings(concept_vector).app()) as url:
        yield url + "/v1"


@pytest.fixture
async def vector_seed(pgvector_url: str, memory_settings: Settings) -> AsyncIterator[Seed]:
    engine = database_config(
        Settings.from_env({}, database_url=pgvector_url, secret_key=SECRET_KEY)
    ).get_engine()
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        yield Seed(session, memory_settings)
        await session.rollback()
    await engine.dispose()


@pytest.fixture
async def embedder(embeddings_url: str) -> AsyncIterator[OpenAIEmbeddings]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield OpenAIEmbeddings(http, embeddings_url, API_KEY, "concepts-1")


async def ask(seed: Seed, room: object, user: object, query: str, **kw: object) -> list[Snippet]:
    return await retrieve(
        seed.session,
        tenant_id=room.tenant_id,  # type: ignore[attr-defined]
        room_id=room.id,  # type: ignore[attr-defined]
        user_id=user.id,  # type: ignore[attr-defined]
        query=query,
        token_budget=2000,
        **kw,  # type: ignore[arg-type]
    )


def scored(found: list[Snippet]) -> list[str]:
    """The snippets a search ranked (not the filler of a matched document's other sections)."""
    return [s.text for s in found if s.score > 0]


async def test_the_migration_made_the_vector_columns_and_rows_get_embeddings(
    vector_seed: Seed, embedder: OpenAIEmbeddings
) -> None:
    seed = vector_seed
    assert await vector_search_ready(seed.session)
    ada = await seed.user()
    room = await seed.room(await seed.workspace(ada), ada)
    note = await create_note(seed.session, room.id, ada.id, "Bring the puppy on Fridays", embedder=embedder)
    document = await seed.document(ada, "handbook.md", HANDBOOK, room=room, embedder=embedder)
    stored = await seed.session.execute(
        text(
            "SELECT embedding::text FROM note WHERE id = :note UNION ALL "
            "SELECT embedding::text FROM document_chunk WHERE document_id = :document"
        ),
        {"note": note.id, "document": document.id},
    )
    vectors = [[float(x) for x in row[0].strip("[]").split(",")] for row in stored]
    assert len(vectors) == 4  # the note, and one per section of the handbook
    assert vectors[0] == pytest.approx(concept_vector("Bring the puppy on Fridays"), rel=1e-6)


async def test_vector_search_finds_what_shares_no_word_with_the_question(
    vector_seed: Seed, embedder: OpenAIEmbeddings
) -> None:
    seed = vector_seed
    ada = await seed.user()
    room = await seed.room(await seed.workspace(ada), ada)
    await seed.document(ada, "handbook.md", HANDBOOK, room=room, embedder=embedder)
    await create_note(seed.session, room.id, ada.id, "The office dog is called Biscuit", embedder=embedder)
    question = "How much annual leave?"

    # Full-text alone: no word of the question is in the handbook.
    assert scored(await ask(seed, room, ada, question)) == []
    # With vectors, the section about vacation days comes first.
    found = await ask(seed, room, ada, question, embedder=embedder)
    assert scored(found)[0].startswith("Every employee gets 25 vacation days")
    assert found[0].source == "document: handbook.md, Time away"
    # A question both searches answer puts the section they agree on first.
    both = scored(await ask(seed, room, ada, "when are wages paid?", embedder=embedder))
    assert both[0].startswith("Payroll runs on the 25th")
    # A note is found by meaning too.
    assert scored(await ask(seed, room, ada, "can I bring my pet?", embedder=embedder))[0] == (
        "The office dog is called Biscuit"
    )


async def test_vectors_never_cross_a_workspace_or_leave_a_private_room(
    vector_seed: Seed, embedder: OpenAIEmbeddings
) -> None:
    seed = vector_seed
    ada, eve = await seed.user("Ada"), await seed.user("Eve")
    ours = await seed.workspace(ada, "Ours")
    theirs = await seed.workspace(eve, "Theirs")
    await seed.join_workspace(theirs, ada)  # Ada belongs to both
    general = await seed.room(ours, ada)
    secret = await seed.room(ours, ada, private=True, name="secret")
    elsewhere = await seed.room(theirs, eve)
    # Texts that sit exactly on the question's vector, where the question must not see them.
    await seed.document(eve, "theirs.md", "# Leave\nTheir vacation policy", room=elsewhere, embedder=embedder)
    await create_note(seed.session, elsewhere.id, eve.id, "their holiday plans", embedder=embedder)
    await create_note(seed.session, secret.id, ada.id, "secret holiday plans", embedder=embedder)
    await create_note(seed.session, general.id, ada.id, "our parking rules", embedder=embedder)

    found = await ask(seed, general, ada, "vacation", embedder=embedder)
    assert [s.text for s in found] == ["our parking rules"]  # the only thing this room may see
    seen_elsewhere = {s.text for s in await ask(seed, elsewhere, ada, "vacation", embedder=embedder)}
    assert seen_elsewhere == {"Their vacation policy", "their holiday plans"}


async def test_a_question_in_a_room_brings_the_section_it_means_into_the_prompt(
    pgvector_url: str, redis_url: str, memory_settings: Settings, embeddings_url: str
) -> None:
    """The whole app on pgvector: an uploaded document is embedded, and `@mathia` with a
    question that shares no word with it still puts the right section in the model's prompt."""
    fake = FakeAnthropic()
    with fake.running() as model_url:
        settings = msgspec.structs.replace(
            memory_settings,
            database_url=pgvector_url,
            redis_url=redis_url,
            embedding_base_url=embeddings_url,
            embedding_api_key=API_KEY,
            anthropic_api_key=fake.api_key,
            anthropic_base_url=model_url,
        )
        with serve(create_app(settings)) as url:
            ada = await sign_up(url, "Ada")
            room = await ada.room(await ada.workspace("People team"), "questions")
            upload = await ada.http.post(
                f"/api/rooms/{room}/documents",
                files={"file": ("handbook.md", HANDBOOK.encode(), "text/markdown")},
            )
            assert upload.status_code == 201, upload.text
            fake.script(Reply(chunks=["25 days."]))
            async with ada.socket(url) as socket:
                await socket.subscribe(room)
                await socket.send(
                    {"type": "message.send", "room_id": room, "body": "@mathia how much annual leave?"}
                )
                await socket.expect("ai.done")
    system = str(fake.exchanges[0].body["system"])
    assert "Every employee gets 25 vacation days" in system and "handbook.md" in system
    assert system.index("25 vacation days") < system.index("Register your sedan")
