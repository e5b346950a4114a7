"""Black-box clients for the suite: HTTP through httpx, WebSocket through `websockets`."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection


@dataclass
class Member:
    """A signed-up user with an authenticated HTTP client."""

    http: httpx.AsyncClient
    user_id: str
    email: str
    access_token: str
    refresh_token: str

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params)

    async def workspace(self, name: str = "Acme") -> str:
        response = await self.post("/api/workspaces", {"name": name})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def room(self, workspace_id: str, name: str = "general", private: bool = False) -> str:
        response = await self.post(
            f"/api/workspaces/{workspace_id}/rooms", {"name": name, "private": private}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def invite(self, workspace_id: str, other: Member, role: str = "member") -> None:
        code = (await self.post(f"/api/workspaces/{workspace_id}/invites", {"role": role})).json()["code"]
        response = await other.post(f"/api/invites/{code}/accept")
        assert response.status_code == 200, response.text

    def socket(self, base_url: str, token: str | None = None, receive_buffer: int | None = None) -> Socket:
        url = base_url.replace("http", "ws", 1) + f"/ws?token={token or self.access_token}"
        return Socket(url, receive_buffer)


async def sign_up(base_url: str, name: str = "Ada") -> Member:
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    http = httpx.AsyncClient(base_url=base_url, timeout=10)
    response = await http.post(
        "/api/auth/register", json={"email": email, "password": "correct horse battery", "display_name": name}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    http.headers["Authorization"] = f"Bearer {body['access_token']}"
    return Member(http, body["user"]["id"], email, body["access_token"], body["refresh_token"])


class Socket:
    """A WebSocket client that keeps every frame it received, for assertions."""

    def __init__(self, url: str, receive_buffer: int | None = None) -> None:
        self.url = url
        self.receive_buffer = receive_buffer  # a fixed kernel receive buffer (no autotuning), in bytes
        self.connection: ClientConnection | None = None
        self.frames: list[dict[str, Any]] = []
        self._cursor = 0

    async def __aenter__(self) -> Socket:
        sock = None
        if self.receive_buffer is not None:
            address = urlsplit(self.url)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)  # before connecting
            await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        self.connection = await websockets.connect(self.url, max_size=None, sock=sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.connection is not None
        await self.connection.close()

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        assert self.connection is not None
        await self.connection.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool] | str, timeout: float = 5
    ) -> dict[str, Any]:
        """The next frame (after those already matched) that satisfies `predicate` (or has that type)."""
        check = (lambda f: f["type"] == predicate) if isinstance(predicate, str) else predicate
        assert self.connection is not None
        async with asyncio.timeout(timeout):
            while True:
                while self._cursor < len(self.frames):
                    frame = self.frames[self._cursor]
                    self._cursor += 1
                    if check(frame):
                        return frame
                self.frames.append(json.loads(await self.connection.recv()))

    async def subscribe(self, room_id: str, after_seq: int | None = None) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "room_id": room_id}
        if after_seq is not None:
            frame["after_seq"] = after_seq
        await self.send(frame)
        await self.expect(lambda f: f["type"] == "subscribed" and f["room_id"] == room_id)

    async def messages(self, count: int, timeout: float = 5) -> list[dict[str, Any]]:
        return [(await self.expect("message.new", timeout))["message"] for _ in range(count)]
