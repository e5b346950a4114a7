"""The application factory: one Litestar app with every domain's routes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request, Response
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from mathia.actions.controllers import ActionController
from mathia.assembly import build_assistant, wire_moderation
from mathia.assistant.controllers import UsageController
from mathia.assistant.streaming import Assistant
from mathia.auth.controllers import AuthController, me
from mathia.auth.dependencies import provide_current_user
from mathia.config import Settings
from mathia.connectors.controllers import ConnectorController, plugin_route
from mathia.connectors.delivery import GatewayDelivery
from mathia.connectors.services import ConnectorRuntime, build_runtime
from mathia.health import live, ready
from mathia.jobs import run_worker
from mathia.memory.controllers import MemoryController
from mathia.moderation.controllers import ModerationController
from mathia.reminders.controllers import ReminderController
from mathia.rooms.controllers import RoomController
from mathia.rooms.fanout import RoomFeeds
from mathia.rooms.gateway import gateway
from mathia.rooms.presence import Presence
from mathia.runtime import Runtime
from mathia.tasks import cancel
from mathia.tenants.controllers import WorkspaceController
from mathia.tokens import encoding
from mathia.wallet.controllers import WalletController

log = logging.getLogger("mathia")
WEB_DIR = Path(__file__).parent / "web"
ROUTES: list[Any] = [
    live,
    ready,
    AuthController,
    me,
    WorkspaceController,
    RoomController,
    gateway,
    UsageController,
    ModerationController,
    ReminderController,
    ConnectorController,
    plugin_route,
    ActionController,
    MemoryController,
    WalletController,
]


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every HTTP request an id, echoed in `X-Request-ID` and in error logs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.exception(
        "request %s %s failed (request id %s)", request.method, request.url.path, request_id, exc_info=exc
    )
    return Response(
        {"status_code": 500, "detail": "Internal server error", "extra": {"request_id": request_id}},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    runtime = Runtime(settings or Settings.from_env())
    encoding()  # the tokenizer: built here, not inside the first mention while others stream
    channels = ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=runtime.redis), arbitrary_channels_allowed=True
    )

    delivery = GatewayDelivery(runtime.redis, runtime.room_bus)
    connectors = build_runtime(runtime.settings, runtime.redis, runtime.http, delivery)
    wire_moderation(runtime)
    assistant = build_assistant(runtime, connectors)
    presence = Presence(runtime.redis, runtime.room_bus, runtime.settings.presence_ttl)
    feeds = RoomFeeds(channels, runtime.room_bus)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await connectors.start()
        await assistant.start()
        await presence.start()
        # The embedded default has no separate worker process: the jobs run here.
        worker = (
            asyncio.create_task(run_worker(runtime.settings)) if runtime.settings.embedded_worker else None
        )
        try:
            yield
        finally:
            await cancel(worker)
            await assistant.aclose()
            await presence.aclose()
            await runtime.aclose()

    async def provide_runtime() -> Runtime:
        return runtime

    async def provide_connectors() -> ConnectorRuntime:
        return connectors

    async def provide_assistant() -> Assistant:
        return assistant

    async def provide_presence() -> Presence:
        return presence

    async def provide_feeds() -> RoomFeeds:
        return feeds

    return Litestar(
        route_handlers=[
            *ROUTES,
            create_static_files_router("/", directories=[WEB_DIR], html_mode=True, include_in_schema=False),
        ],
        plugins=[SQLAlchemyPlugin(config=runtime.db), channels],
        dependencies={
            "runtime": Provide(provide_runtime),
            "current_user": Provide(provide_current_user),
            "connectors": Provide(provide_connectors),
            "assistant": Provide(provide_assistant),
            "presence": Provide(provide_presence),
            "feeds": Provide(provide_feeds),
        },
        middleware=[request_id_middleware],
        exception_handlers={HTTPException: _http_error, Exception: internal_error},
        lifespan=[lifespan],
        debug=runtime.settings.debug,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": exc.detail}
    if exc.extra:
        body["extra"] = exc.extra
    return Response(body, status_code=exc.status_code, headers=exc.headers)
