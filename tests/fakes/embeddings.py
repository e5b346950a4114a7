"""A fake OpenAI-compatible embeddings endpoint (`POST /v1/embeddings`), for the memory tests.

It follows the public format: bearer auth, `input` as a string or a list, one item per input
carrying its `index` (sent here in reverse order, which the API does not promise against),
usage in tokens, and the API's error body for a wrong key. What a text's vector is comes
from `vectorize`: a hash by default (stable, meaningless), or a tiny concept model when a
test needs texts that share no word to land near each other.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from litestar import Litestar, Request, Response, post

API_KEY = "sk-test"
DIMENSIONS = 8


def fake_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [byte / 255 for byte in digest[:DIMENSIONS]]


class FakeEmbeddings:
    def __init__(self, vectorize: Callable[[str], list[float]] = fake_vector) -> None:
        self.vectorize = vectorize
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def app(self) -> Litestar:
        @post("/v1/embeddings", status_code=200)
        async def embeddings(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
            body = await request.json()
            with self.lock:
                self.requests.append(body)
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
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
                {"object": "embedding", "index": i, "embedding": self.vectorize(text)}
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
