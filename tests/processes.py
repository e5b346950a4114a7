"""Start real `mathia` processes for tests and benchmarks, and stop them cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_RUNNING: dict[str, subprocess.Popen[bytes]] = {}


def kill(base_url: str) -> None:
    """SIGKILL a server started by `mathia_server`, as a crash or the OOM killer would."""
    process = _RUNNING[base_url]
    process.kill()
    process.wait()


@contextmanager
def mathia_server(
    env: Mapping[str, str], log_path: Path, timeout: float = 180, stop: int = signal.SIGINT
) -> Iterator[str]:
    """`mathia serve` on a free port with `env` over a clean environment; yields its base URL,
    then stops it with the signal `stop` and waits for it to exit."""
    port = free_port()
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MATHIA_", "ANTHROPIC_")) and k not in ("DATABASE_URL", "REDIS_URL")
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mathia", "serve", "--port", str(port)],
            env={**clean, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        _RUNNING[base_url] = process
        try:
            _wait_ready(base_url, process, log_path, timeout)
            yield base_url
        finally:
            del _RUNNING[base_url]
            process.send_signal(stop)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"mathia serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"mathia serve was not ready in {timeout} s:\n{log_path.read_text()[-3000:]}")
