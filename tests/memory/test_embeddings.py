"""The OpenAI-compatible embeddings client against a local fake of `POST /v1/embeddings`, and the
gate that keeps embeddings off when the database cannot search vectors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mathia.connectors.testing import serve
from mathia.memory.embeddings import EmbeddingError, OpenAIEmbeddings
from mathia.memory.search import fuse, retrieve, vector_literal
from mathia.memory.services import create_note
from tests.fakes.embeddings import FakeEmbeddings, fake_vector
from tests.memory.conftest import Seed


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeEmbeddings, str]]:
    server = FakeEmbeddings()
    with serve(server.app()) as url:
        yield server, url + "/v1"


async def test_client_batches_and_orders_by_index(fake: tuple[FakeEmbeddings, str]) -> None:
    server, base_url = fake
    texts = [f"text number {i}" for i in range(70)]
    async with httpx.AsyncClient(timeout=5) as http:
        vectors = await OpenAIEmbeddings(http, base_url, "sk-test", "text-embedding-3-small").embed(texts)
    assert vectors == [fake_vector(text) for text in texts]
    recent = server.requests[-2:]
    assert [len(r["input"]) for r in recent] == [64, 6]
    assert all(r["model"] == "text-embedding-3-small" and r["encoding_format"] == "float" for r in recent)


async def test_client_reports_provider_errors(fake: tuple[FakeEmbeddings, str]) -> None:
    _, base_url = fake
    async with httpx.AsyncClient(timeout=5) as http:
        with pytest.raises(EmbeddingError, match="401"):
            await OpenAIEmbeddings(http, base_url, "sk-wrong", "m").embed(["hello"])
        with pytest.raises(EmbeddingError, match="failed"):
            await OpenAIEmbeddings(http, "http://127.0.0.1:9/v1", "sk-test", "m").embed(["hello"])


async def test_without_vector_search_the_embedder_is_never_called(
    seed: Seed, fake: tuple[FakeEmbeddings, str]
) -> None:
    server, base_url = fake
    before = len(server.requests)
    ada = await seed.user()
    workspace = await seed.workspace(ada)
    room = await seed.room(workspace, ada)
    async with httpx.AsyncClient(timeout=5) as http:
        embedder = OpenAIEmbeddings(http, base_url, "sk-test", "m")
        await create_note(seed.session, room.id, ada.id, "the launch moved to May 3", embedder=embedder)
        found = await retrieve(
            seed.session,
            tenant_id=workspace.id,
            room_id=room.id,
            user_id=ada.id,
            query="launch date",
            token_budget=500,
            embedder=embedder,
        )
    assert [s.text for s in found] == ["the launch moved to May 3"]
    assert len(server.requests) == before


def test_fusion_rewards_agreement_between_rankings() -> None:
    a, b, c = ("document", "a"), ("document", "b"), ("note", "c")
    fused = [key for key, _ in fuse([[a, b, c], [c, b]])]  # type: ignore[list-item]
    assert fused == [c, b, a]  # in both lists beats first in one; a first place breaks the tie
    assert vector_literal([1, 0.5]) == "[1.0,0.5]"
