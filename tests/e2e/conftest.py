"""The app as a user gets it: `mathia serve` on the embedded default, driven by headless Chromium.

The server runs as its own process (`uv run mathia serve`) with a temporary data folder, and
talks to a fake Anthropic API served from this process over loopback. Screenshots go to
`MATHIA_SCREENSHOT_DIR` when it is set (the `e2e` nox session points it at docs/screenshots),
else to the test's temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.services import REQUIRED

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
# Short enough that a run sees the client refresh its access token, long enough to stay quiet.
ACCESS_TOKEN_TTL = 40
STARTUP_TIMEOUT = 90.0


@dataclass
class Model:
    fake: FakeAnthropic
    base_url: str


@dataclass
class App:
    url: str
    log: Path


@pytest.fixture(scope="session")
def model() -> Iterator[Model]:
    # A slow default pace, so the browser can be seen streaming before the answer completes.
    fake = FakeAnthropic(
        default=Reply(chunks=["Four", ",", " since", " two", " plus", " two", " is", " four", "."], pace=0.15)
    )
    with fake.running() as base_url:
        yield Model(fake, base_url)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def app(model: Model) -> Iterator[App]:
    # Not under pytest's basetemp: other pytest runs on the machine prune old basetemp folders.
    with tempfile.TemporaryDirectory(prefix="mathia-e2e-") as folder:
        yield from _serve(model, Path(folder))


def _serve(model: Model, data_dir: Path) -> Iterator[App]:
    log = data_dir / "serve.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {
        "MATHIA_DATA_DIR": str(data_dir),
        "MATHIA_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL),
        "ANTHROPIC_API_KEY": model.fake.api_key,
        "ANTHROPIC_BASE_URL": model.base_url,
    }
    with log.open("wb") as out:
        # A session of its own, so stopping it also stops what `uv run` started.
        process = subprocess.Popen(
            ["uv", "run", "mathia", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_live(url, process, log)
        yield App(url, log)
    finally:
        # uv passes SIGTERM on to the server, which then stops its embedded Redis itself;
        # only a server that does not stop in time gets its whole process group killed.
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Kept for a failed run's post-mortem (the data folder itself is deleted).
        kept = Path(tempfile.gettempdir()) / f"mathia-e2e-serve-{port}.log"
        shutil.copyfile(log, kept)
        sys.stderr.write(f"mathia serve log: {kept}\n")


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mathia serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"mathia serve did not answer within {STARTUP_TIMEOUT} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("MATHIA_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
