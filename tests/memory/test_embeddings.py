"""The OpenAI-compatible embeddings client against a local fake of `POST /v1/embeddings`, and the
gate that keeps embeddings off when the database cannot search vectors."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, post

from mathia.connectors.testing import serve
from mathia.memory.embeddings import EmbeddingError, OpenAIEmbeddings
from mathia.memory.search import fuse, retrieve, vector_literal
from mathia.memory.services import create_note
from tests.memory.conftest import Seed

DIMENSIONS = 8


def fake_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [byte / 255 for byte in digest[:DIMENSIONS]]


class FakeEmbeddings:
    """OpenAI's embeddings endpoint: bearer auth, `input` as a string or a list, one item per input
    carrying its `index` (sent here in reverse order, which the API does not promise against)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def app(self) -> Litestar:
        @post("/v1/embeddings", status_code=200)
        async def embeddings(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
            body = await request.json()
            with self.lock:
                self.requests.append(body)
            if request.headers.get("authorization") != "Bearer sk-test":
                return Response(
                    {
                        "error": {
                            "message": "Incorrect API key provided",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_api_key",
                        }
                    },
                    status_code=401,
                )
            inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(text)}
                for i, text in enumerate(inputs)
            ]
            tokens = sum(len(text.split()) for text in inputs)
            return Response(
                {
                    "object": "list",
                    "data": data[::-1],
                    "model": body["model"],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )

        return Litestar([embeddings])


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
