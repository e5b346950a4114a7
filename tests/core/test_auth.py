from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import jwt
import msgspec
import pytest

from mathia.config import Settings
from tests.client import sign_up


async def test_register_login_me(base_url: str) -> None:
    ada = await sign_up(base_url, "Ada")
    async with httpx.AsyncClient(base_url=base_url) as anonymous:
        login = await anonymous.post(
            "/api/auth/login", json={"email": ada.email.upper(), "password": "correct horse battery"}
        )
    assert login.status_code == 200
    body = login.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["user"]["id"] == ada.user_id
    workspace_id = await ada.workspace("Acme")
    me = (await ada.get("/api/me")).json()
    assert me["workspaces"] == [{"id": workspace_id, "name": "Acme", "role": "owner"}]


async def test_register_rejects_bad_input_and_duplicates(base_url: str) -> None:
    ada = await sign_up(base_url)
    async with httpx.AsyncClient(base_url=base_url) as http:
        duplicate = await http.post(
            "/api/auth/register",
            json={"email": ada.email, "password": "another password", "display_name": "Other"},
        )
        short = await http.post(
            "/api/auth/register", json={"email": "x@example.com", "password": "short", "display_name": "X"}
        )
        not_json = await http.post(
            "/api/auth/register", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert duplicate.status_code == 409
    assert short.status_code == 400 and "password" in short.text
    assert not_json.status_code == 400


async def test_wrong_password_and_unknown_email_answer_alike(base_url: str) -> None:
    ada = await sign_up(base_url)
    async with httpx.AsyncClient(base_url=base_url) as http:
        wrong = await http.post("/api/auth/login", json={"email": ada.email, "password": "wrong password!"})
        unknown = await http.post(
            "/api/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}
        )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_login_attempts_are_limited_per_account(base_url: str, app_settings: Settings) -> None:
    ada = await sign_up(base_url)
    async with httpx.AsyncClient(base_url=base_url) as http:
        statuses = [
            (
                await http.post("/api/auth/login", json={"email": ada.email, "password": "bad guess!"})
            ).status_code
            for _ in range(app_settings.login_attempts_per_account + 1)
        ]
        right_but_locked = await http.post(
            "/api/auth/login", json={"email": ada.email, "password": "correct horse battery"}
        )
    assert statuses[:-1] == [401] * app_settings.login_attempts_per_account
    assert statuses[-1] == 429
    assert right_but_locked.status_code == 429 and int(right_but_locked.headers["retry-after"]) > 0


async def test_refresh_rotates_and_reuse_revokes_the_family(base_url: str) -> None:
    ada = await sign_up(base_url)
    async with httpx.AsyncClient(base_url=base_url) as http:
        first = await http.post("/api/auth/refresh", json={"refresh_token": ada.refresh_token})
        assert first.status_code == 200
        newer = first.json()["refresh_token"]
        assert newer != ada.refresh_token
        replayed = await http.post("/api/auth/refresh", json={"refresh_token": ada.refresh_token})
        assert replayed.status_code == 401
        # The thief's replay burned the family: the legitimate newer token is dead too.
        after_revocation = await http.post("/api/auth/refresh", json={"refresh_token": newer})
        assert after_revocation.status_code == 401


async def test_logout_spends_the_refresh_token(base_url: str) -> None:
    ada = await sign_up(base_url)
    assert (await ada.post("/api/auth/logout", {"refresh_token": ada.refresh_token})).status_code == 204
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (
            await http.post("/api/auth/refresh", json={"refresh_token": ada.refresh_token})
        ).status_code == 401


async def test_bad_access_tokens_are_refused(base_url: str, app_settings: Settings) -> None:
    ada = await sign_up(base_url)
    now = dt.datetime.now(dt.UTC)
    expired = jwt.encode(
        {"sub": ada.user_id, "typ": "access", "exp": now - dt.timedelta(seconds=1)},
        app_settings.secret_key,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": ada.user_id, "typ": "access", "exp": now + dt.timedelta(minutes=5)},
        "another key, as long as the app's own",
        algorithm="HS256",
    )
    wrong_type = jwt.encode(
        {"sub": ada.user_id, "typ": "refresh", "exp": now + dt.timedelta(minutes=5)},
        app_settings.secret_key,
        algorithm="HS256",
    )
    async with httpx.AsyncClient(base_url=base_url) as http:
        for token in (expired, forged, wrong_type, ada.refresh_token, "garbage"):
            response = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, token
        assert (await http.get("/api/me")).status_code == 401


def test_a_signing_key_under_32_bytes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"MATHIA_SECRET_KEY has 31 bytes; .* needs at least 32"):
        Settings.from_env({"MATHIA_SECRET_KEY": "k" * 31, "MATHIA_DATA_DIR": str(tmp_path)})
    assert not list(tmp_path.iterdir())  # nothing was made in its place
    key = "é" * 16  # 32 bytes in UTF-8, as the key is used
    assert Settings.from_env({"MATHIA_SECRET_KEY": key}).secret_key == key


async def test_ready_names_the_service_that_is_down(app_settings: Settings) -> None:
    from mathia.app import create_app
    from mathia.connectors.testing import serve
    from tests.processes import free_port

    no_redis = msgspec.structs.replace(app_settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with serve(create_app(no_redis)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            live, ready = await http.get("/health/live"), await http.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["detail"].startswith("redis is not answering")


async def test_health(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        assert (await http.get("/health/live")).json() == {"status": "ok"}
        ready = await http.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
