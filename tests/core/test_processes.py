"""Real `mathia serve` processes: the embedded default, and two processes sharing
one PostgreSQL and one Redis."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis

from mathia.cli import FULL_COLLECTION_EVERY
from tests.client import Member, sign_up
from tests.processes import kill, mathia_server


async def test_embedded_default_runs_with_no_configuration(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with mathia_server({"MATHIA_DATA_DIR": str(data_dir)}, tmp_path / "serve.log") as base_url:
        ada = await sign_up(base_url)
        room = await ada.room(await ada.workspace())
        async with ada.socket(base_url) as socket:
            await socket.subscribe(room)
            await socket.send({"type": "message.send", "room_id": room, "body": "hello, embedded"})
            assert (await socket.messages(1))[0]["body"] == "hello, embedded"
    assert (data_dir / "mathia.db").exists()
    key = data_dir / "secret.key"
    assert key.stat().st_mode & 0o077 == 0, "the signing key must be private to its owner"
    # The data survives a restart, and the same key still signs: the old token works.
    with mathia_server({"MATHIA_DATA_DIR": str(data_dir)}, tmp_path / "serve2.log") as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            me = await http.get("/api/me", headers={"Authorization": f"Bearer {ada.access_token}"})
    assert me.status_code == 200
    assert me.json()["workspaces"][0]["name"] == "Acme"


def test_a_terminated_embedded_default_stops_its_redis(tmp_path: Path) -> None:
    """SIGTERM is how service managers stop a process: the embedded Redis must go with it."""
    data_dir = tmp_path / "data"
    embedded = redis.Redis(unix_socket_path=str(data_dir / "redis" / "redis.sock"))
    with mathia_server({"MATHIA_DATA_DIR": str(data_dir)}, tmp_path / "serve.log", stop=signal.SIGTERM):
        assert embedded.ping()
    with pytest.raises(redis.ConnectionError):
        embedded.ping()


@asynccontextmanager
async def ada_and_bob_on_two_servers(
    postgres_url: str, redis_url: str, tmp_path: Path, **env: str
) -> AsyncIterator[tuple[str, str, Member, Member, str]]:
    """Two `mathia serve` processes on one PostgreSQL and Redis; Ada signed up on the first,
    Bob on the second, both members of one room. Yields both URLs, Ada, Bob and the room."""
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "MATHIA_SECRET_KEY": secrets.token_hex(16),
        "MATHIA_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    with mathia_server(env, tmp_path / "a.log") as url_a, mathia_server(env, tmp_path / "b.log") as url_b:
        ada, bob = await sign_up(url_a, "Ada"), await sign_up(url_b, "Bob")
        workspace = await ada.workspace()
        await ada.invite(workspace, bob)
        room = await ada.room(workspace)
        assert (await bob.post(f"/api/rooms/{room}/join")).status_code == 200
        yield url_a, url_b, ada, bob, room


async def test_two_processes_share_rooms_in_seq_order(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with (
        ada_and_bob_on_two_servers(postgres_url, redis_url, tmp_path) as (url_a, url_b, ada, bob, room),
        ada.socket(url_a) as a,
        bob.socket(url_b) as b,
    ):
        await a.subscribe(room)
        await b.subscribe(room)

        async def chatter(socket: object, who: str) -> None:
            for i in range(15):
                await socket.send({"type": "message.send", "room_id": room, "body": f"{who} {i}"})  # type: ignore[attr-defined]

        await asyncio.gather(chatter(a, "ada"), chatter(b, "bob"))
        seen_a, seen_b = await a.messages(30, timeout=20), await b.messages(30, timeout=20)
    assert [m["seq"] for m in seen_a] == list(range(1, 31))
    assert [(m["seq"], m["body"]) for m in seen_a] == [(m["seq"], m["body"]) for m in seen_b]
    assert sorted(m["body"] for m in seen_a) == sorted(
        [f"ada {i}" for i in range(15)] + [f"bob {i}" for i in range(15)]
    )


async def test_a_killed_process_takes_its_users_offline(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    two = ada_and_bob_on_two_servers(postgres_url, redis_url, tmp_path, MATHIA_PRESENCE_TTL="3")
    async with two as (url_a, url_b, ada, bob, room):
        async with ada.socket(url_a) as a:
            await a.subscribe(room)
            async with bob.socket(url_b) as b:
                await b.subscribe(room)
                await a.expect(lambda f: f["type"] == "presence" and f["user_id"] == bob.user_id)
                kill(url_b)  # no chance to say goodbye
                offline = await a.expect(lambda f: f["type"] == "presence" and f["status"] == "offline", 15)
        assert offline["user_id"] == bob.user_id
        # Someone arriving now is not told that Bob is online.
        async with ada.socket(url_a) as late:
            await late.subscribe(room)
            await late.send({"type": "ping"})
            await late.expect("pong")
        assert not [f for f in late.frames if f["type"] == "presence" and f["user_id"] == bob.user_id]


def test_a_server_process_freezes_its_start_up_heap_and_rarely_collects_it_all() -> None:
    # In a child: freezing is for the life of a process, not for this test run's.
    probe = (
        "import gc, json; from mathia.cli import freeze_heap; before = gc.get_threshold(); freeze_heap(); "
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count()]))"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, text=True).stdout
    before, after, frozen = json.loads(output)
    assert after == [before[0], before[1], FULL_COLLECTION_EVERY]
    assert frozen > 10_000  # the imported modules, at least
