"""Retrieval latency over 10,000 document chunks: full-text on SQLite and on PostgreSQL, then
full-text and vectors together on PostgreSQL with pgvector.

    uv run python bench/retrieval.py [--chunks 10000] [--queries 200] [--budget 2000] [--dimensions 384]

Builds a scratch database of each kind (SQLite in a temporary folder; PostgreSQL next to
MATHIA_BENCH_POSTGRES, default the local test server; PostgreSQL 16 with pgvector from the
`pgserver` wheel, as the tests use), migrates it, fills one room of one workspace with the
chunks (plus the same number in a second workspace, which every query must filter out) and 200
notes, then times `retrieve()` for random questions and prints p50/p99. On pgvector every
chunk and note gets an embedding (feature hashing of its words into `--dimensions` numbers:
the cost of the search does not depend on what the numbers mean) and every question too.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import random
import re
import secrets
import statistics
import tempfile
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mathia.auth.models import User
from mathia.config import Settings
from mathia.db import database_config
from mathia.db.migrations import upgrade
from mathia.memory.models import Document, DocumentChunk, Note, NotePriority
from mathia.memory.search import retrieve, vector_literal
from mathia.rooms.models import Room
from mathia.tenants.models import Workspace

SECRET_KEY = secrets.token_urlsafe(32)  # settings need one; nothing here is signed
SERVER = os.environ.get("MATHIA_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
CORPUS = Path(__file__).parents[1] / "tests" / "memory" / "corpus"
CHUNKS_PER_DOCUMENT = 50
WORDS_PER_CHUNK = 150
SYLLABLES = ["ka", "lo", "mi", "ran", "te", "su", "vo", "zen", "pa", "dri", "no", "shi", "gu", "bel", "or"]


def vocabulary(rng: random.Random) -> list[str]:
    """The corpus's words, then made-up ones: about 6,000 words, drawn with Zipf weights below."""
    words = dict.fromkeys(
        re.findall(r"[a-z]{3,}", " ".join(p.read_text().lower() for p in CORPUS.glob("*.*")))
    )
    while len(words) < 6000:
        words.setdefault("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))), None)
    return list(words)


class Text:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(rng)
        self.weights = [1 / rank for rank in range(1, len(self.words) + 1)]

    def words_(self, count: int) -> list[str]:
        return self.rng.choices(self.words, weights=self.weights, k=count)

    def chunk(self) -> str:
        words = self.words_(WORDS_PER_CHUNK)
        return ". ".join(" ".join(words[i : i + 15]).capitalize() for i in range(0, len(words), 15)) + "."

    def question(self, common: bool) -> str:
        """Common: words drawn like the text's own, so most chunks match some of them (the slow
        case). Distinctive: words drawn uniformly from the vocabulary, like a question naming things."""
        count = self.rng.randint(3, 7)
        words = self.words_(count) if common else self.rng.sample(self.words, count)
        return "What do we know about " + " ".join(words) + "?"


async def fill(session: AsyncSession, text: Text, chunks: int) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    user = User(email=f"bench-{secrets.token_hex(4)}@example.com", display_name="Bench", password_hash="x")
    session.add(user)
    await session.flush()
    rooms = []
    for name in ("target", "noise"):
        workspace = Workspace(name=name, created_by=user.id)
        session.add(workspace)
        await session.flush()
        room = Room(tenant_id=workspace.id, name=name, private=False, created_by=user.id)
        session.add(room)
        await session.flush()
        rooms.append(room)
        for start in range(0, chunks, CHUNKS_PER_DOCUMENT):
            document = Document(
                tenant_id=workspace.id,
                room_id=room.id,
                name=f"doc-{start}.md",
                content_type="text/markdown",
                size_bytes=0,
                sha256=secrets.token_hex(32),
                chunk_count=CHUNKS_PER_DOCUMENT,
                uploaded_by=user.id,
            )
            session.add(document)
            await session.flush()
            rows = [
                {
                    "tenant_id": workspace.id,
                    "document_id": document.id,
                    "room_id": room.id,
                    "ordinal": i,
                    "section": " ".join(text.words_(3)).title(),
                    "body": text.chunk(),
                    "token_count": 200,
                }
                for i in range(CHUNKS_PER_DOCUMENT)
            ]
            await session.execute(insert(DocumentChunk), rows)
        await session.execute(
            insert(Note),
            [
                {
                    "tenant_id": workspace.id,
                    "room_id": room.id,
                    "author_id": user.id,
                    "body": " ".join(text.words_(20)),
                    "priority": NotePriority.HIGH if i % 20 == 0 else NotePriority.NORMAL,
                    "by_assistant": False,
                }
                for i in range(200)
            ],
        )
    await session.commit()
    return rooms[0].tenant_id, rooms[0].id, user.id


class HashingEmbedder:
    """An `Embedder` without a model: each word adds one to a dimension chosen by its hash."""

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.vector(passage) for passage in texts]

    def vector(self, passage: str) -> list[float]:
        counts = [0.0] * self.dimensions
        for word in re.findall(r"\w+", passage.lower()):
            counts[zlib.crc32(word.encode()) % self.dimensions] += 1
        norm = math.sqrt(sum(c * c for c in counts)) or 1.0
        return [round(c / norm, 6) for c in counts]


async def embed_all(session: AsyncSession, embedder: HashingEmbedder) -> None:
    """Give every chunk and note an embedding, as indexing with an embedder configured does."""
    for model, columns in (
        (DocumentChunk, (DocumentChunk.section, DocumentChunk.body)),
        (Note, (Note.body,)),
    ):
        rows = (await session.execute(sa.select(model.id, *columns))).all()
        updates = [
            {"id": row_id, "v": vector_literal(embedder.vector("\n".join(parts)))} for row_id, *parts in rows
        ]
        # The table name is one of the two models' own.
        statement = sa.text(f"UPDATE {model.__tablename__} SET embedding = CAST(:v AS vector) WHERE id = :id")
        await session.execute(statement, updates)
    await session.commit()


async def measure(
    url: str, label: str, args: argparse.Namespace, embedder: HashingEmbedder | None = None
) -> list[str]:
    engine = database_config(Settings.from_env({}, database_url=url, secret_key=SECRET_KEY)).get_engine()
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    text = Text(random.Random(7))
    started = time.perf_counter()
    async with sessions() as session:
        tenant_id, room_id, user_id = await fill(session, text, args.chunks)
        if embedder is not None:
            await embed_all(session, embedder)
    fill_seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.exec_driver_sql("ANALYZE")
    rows = []
    # With an embedder, full-text alone runs too, on the same data: the baseline of what vectors add.
    searches = [("full-text", None)] + ([("full-text + vectors", embedder)] if embedder else [])
    questions = {
        common: [text.question(common) for _ in range(args.queries + 20)] for common in (False, True)
    }
    async with sessions() as session:
        for (search, query_embedder), common in itertools.product(searches, (False, True)):
            timings, sizes = [], []
            cpu_begin = time.process_time()
            for n, question in enumerate(questions[common]):
                begin = time.perf_counter()
                found = await retrieve(
                    session,
                    tenant_id=tenant_id,
                    room_id=room_id,
                    user_id=user_id,
                    query=question,
                    token_budget=args.budget,
                    embedder=query_embedder,
                )
                if n >= 20:  # the first few warm caches and the tokenizer
                    timings.append((time.perf_counter() - begin) * 1000)
                    sizes.append(len(found))
            # CPU of this process (SQLite runs in it; PostgreSQL's work is in the server): less load-bound.
            cpu_ms = (time.process_time() - cpu_begin) * 1000 / (args.queries + 20)
            cuts = statistics.quantiles(timings, n=100)
            rows.append(
                f"| {label} | {search} | {'common' if common else 'distinctive'} | {args.queries} | "
                f"{cuts[49]:.1f} | {cuts[98]:.1f} | {cpu_ms:.1f} | {statistics.mean(sizes):.1f} | "
                f"{fill_seconds:.0f} s |"
            )
    await engine.dispose()
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--dimensions", type=int, default=384, help="embedding size on pgvector")
    args = parser.parse_args()
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print(f"{args.chunks:,} chunks in the queried room, as many in another workspace, 200 notes each")
    columns = [
        "database",
        "search",
        "question words",
        "queries",
        "p50 ms",
        "p99 ms",
        "CPU ms/query",
        "snippets",
    ]
    print("| " + " | ".join([*columns, "fill time"]) + " |")
    print("|---|---|---|---|---|---|---|---|---|")

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_env({}, data_dir=Path(folder), secret_key=SECRET_KEY)
        await asyncio.to_thread(upgrade, settings)
        print(*await measure(settings.sqlalchemy_url, "SQLite (FTS5)", args), sep="\n", flush=True)

    name = f"mathia_bench_{secrets.token_hex(4)}"
    admin = SERVER.replace("+asyncpg", "")
    connection = await asyncpg.connect(admin)
    await connection.execute(f'CREATE DATABASE "{name}"')
    url = SERVER.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(upgrade, Settings.from_env({}, database_url=url, secret_key=SECRET_KEY))
        print(*await measure(url, "PostgreSQL (tsvector + GIN)", args), sep="\n", flush=True)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()

    import pgserver  # a dev dependency: PostgreSQL 16 with pgvector, private to this run

    with tempfile.TemporaryDirectory() as folder:
        server = pgserver.get_server(Path(folder), cleanup_mode="delete")
        try:
            server.psql("CREATE DATABASE bench")
            url = server.get_uri("bench").replace("postgresql://", "postgresql+asyncpg://", 1)
            await asyncio.to_thread(upgrade, Settings.from_env({}, database_url=url, secret_key=SECRET_KEY))
            label = f"PostgreSQL 16 + pgvector ({args.dimensions} dimensions, exact search)"
            print(*await measure(url, label, args, HashingEmbedder(args.dimensions)), sep="\n", flush=True)
        finally:
            server.cleanup()
    print("load average at end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    asyncio.run(main())
