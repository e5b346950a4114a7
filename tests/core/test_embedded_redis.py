"""The embedded default's Redis, started and stopped on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from mathia.embedded_redis import embedded_redis


def test_a_data_folder_too_deep_for_a_unix_socket_gets_a_short_one_removed_after(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with embedded_redis(deep) as url:
        socket = Path(url.removeprefix("unix://"))
        assert len(str(socket)) < 100 and not socket.is_relative_to(tmp_path)
        client = redis.Redis.from_url(url)
        assert client.set("kept", "yes")
    assert not socket.parent.exists()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with embedded_redis(deep) as url:  # the data itself is in the data folder
        assert redis.Redis.from_url(url).get("kept") == b"yes"
