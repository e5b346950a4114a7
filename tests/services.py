"""Where the test suite finds PostgreSQL and Redis, and what it does when one is down.

With MATHIA_REQUIRE_SERVICES=1 (CI) a missing service fails the test; otherwise it skips.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

POSTGRES_URL = os.environ.get("MATHIA_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MATHIA_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRED = os.environ.get("MATHIA_REQUIRE_SERVICES") == "1"


def answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, name: str) -> None:
    if answers(url):
        return
    message = f"{name} is not answering at {url}"
    if REQUIRED:
        pytest.fail(message)
    pytest.skip(message)
