"""Embeddings from an OpenAI-compatible `POST {base_url}/embeddings` endpoint (OpenAI,
OpenRouter, a local server), used for vector search on PostgreSQL with pgvector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx
import msgspec

from mathia.config import Settings

BATCH = 64  # inputs per request; providers cap a request's inputs and total tokens


class EmbeddingError(Exception):
    pass


class Embedder(Protocol):
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class _Item(msgspec.Struct):
    index: int
    embedding: list[float]


class _Reply(msgspec.Struct):
    data: list[_Item]


class OpenAIEmbeddings:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str | None, model: str) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + "/embeddings"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            vectors += await self._batch(list(texts[start : start + BATCH]))
        return vectors

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        try:
            response = await self.http.post(self.url, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"embeddings request failed: {exc!r}") from exc
        if response.status_code != 200:
            raise EmbeddingError(
                f"embeddings endpoint answered {response.status_code}: {response.text[:200]}"
            )
        try:
            reply = msgspec.json.decode(response.content, type=_Reply)
        except msgspec.DecodeError as exc:
            raise EmbeddingError(f"embeddings reply is malformed: {exc}") from exc
        # The items carry their input's index; do not trust their order.
        items = sorted(reply.data, key=lambda item: item.index)
        if [item.index for item in items] != list(range(len(texts))):
            raise EmbeddingError(f"embeddings reply has {len(items)} vectors for {len(texts)} inputs")
        return [item.embedding for item in items]


def embedder_from(settings: Settings, http: httpx.AsyncClient) -> Embedder | None:
    if not settings.embedding_base_url:
        return None
    return OpenAIEmbeddings(
        http, settings.embedding_base_url, settings.embedding_api_key, settings.embedding_model
    )
