"""The `mathia` command."""

from __future__ import annotations

import gc
import logging
import signal
from contextlib import ExitStack
from types import FrameType
from typing import Any

import click
import msgspec
import uvicorn

from mathia.config import Settings
from mathia.connectors.cli import plugins
from mathia.db.migrations import upgrade
from mathia.embedded_redis import embedded_redis
from mathia.wallet.cli import wallet

# A full garbage collection runs at most once per this many collections of the middle
# generation (CPython's default is 10): every 11 to 24 minutes with 50 answers streaming.
FULL_COLLECTION_EVERY = 1000

# How uvicorn serves the app's WebSockets: in `serve`, and in the tests that run the app. (Its
# `auto` protocol is already websockets' sans-I/O one, the cheaper per frame: bench/ws_send.py.)
WEBSOCKET_OPTIONS: dict[str, Any] = {
    # Frames above the app's own limit still reach it (and get a `too_large` error frame);
    # only frames past this transport limit close the socket.
    "ws_max_size": 16 * 1024 * 1024,
    # Chat frames are small; compressing each one per socket cost ~11 % of fan-out CPU.
    "ws_per_message_deflate": False,
}


@click.group()
def main() -> None:
    """Mathia: a self-hostable AI chat platform for teams."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def freeze_heap() -> None:
    """Exempt what the process has built so far (modules, the app, its wiring) from garbage
    collection, and make full collections rare. The start-up heap lives as long as the
    process, and a full collection that scans it pauses the event loop for about 200 ms,
    stalling every socket and stream at once. A full collection of what a busy server holds
    after that (sockets, sessions, tasks) still pauses it for 40 to 60 ms, and by default
    comes every few seconds under load; the young generations keep collecting as usual."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the web app, with migrations applied. Without DATABASE_URL and REDIS_URL it uses
    SQLite and a Redis of its own in MATHIA_DATA_DIR, and runs the worker in-process."""
    from mathia.app import create_app

    settings = Settings.from_env()
    # SIGTERM ends a process on the spot by default, and the embedded Redis would outlive it;
    # uvicorn, once it has shut down on one, raises it again. Unwind the stack instead.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with ExitStack() as stack:
        if settings.redis_url is None:
            url = stack.enter_context(embedded_redis(settings.data_dir))
            settings = msgspec.structs.replace(settings, redis_url=url, embedded_worker=True)
        upgrade(settings)
        app = create_app(settings)
        freeze_heap()
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            lifespan="on",
            **WEBSOCKET_OPTIONS,
        )


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # the status a shell gives a process ended by the signal


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    upgrade(Settings.from_env())
    click.echo("database is up to date")


@main.command()
def worker() -> None:
    """Run the background worker (needs REDIS_URL)."""
    from mathia.jobs import main_worker

    settings = Settings.from_env()
    if settings.redis_url is None:
        raise click.UsageError("set REDIS_URL: a separate worker needs the Redis the web processes use")
    upgrade(settings)
    freeze_heap()
    main_worker(settings)


main.add_command(wallet)
main.add_command(plugins)
