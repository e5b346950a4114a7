"""Credentials are encrypted at rest, rotate to a new key, and never come back out."""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.connectors.crypto import Crypto
from mathia.connectors.services import (
    ConnectorRuntime,
    WorkspaceFacade,
    configure,
    get_config,
    rotate_credentials,
    secrets_and_settings,
)
from tests.actions.conftest import Team


async def test_encrypted_at_rest_and_rotated(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    connectors.crypto = Crypto([old])
    api_key = "ow-" + secrets.token_hex(12)
    await configure(
        connectors, session, team.workspace, "weather", enabled=True, credentials={"api_key": api_key}
    )
    await WorkspaceFacade(connectors, session, team.workspace, "weather").set_user_secret(
        team.member, {"refresh_token": "rt-" + api_key}
    )
    rows = [
        *(await session.execute(text("SELECT credentials, settings FROM connector_config"))).all(),
        *(await session.execute(text("SELECT secret FROM connector_user_secret"))).all(),
    ]
    raw = " ".join(str(value) for row in rows for value in row)
    assert api_key not in raw and raw.count("gAAAAA") == 2  # two Fernet tokens, no plain secret

    connectors.crypto = Crypto([new, old])  # the new key first: it encrypts, both decrypt
    assert await rotate_credentials(session, connectors.crypto) >= 2
    connectors.crypto = Crypto([new])  # the old key is gone
    config = await get_config(session, team.workspace, "weather")
    credentials, _ = secrets_and_settings(connectors, config, connectors.registry.connectors["weather"])
    assert credentials == {"api_key": api_key}
    facade = WorkspaceFacade(connectors, session, team.workspace, "weather")
    assert await facade.get_user_secret(team.member) == {"refresh_token": "rt-" + api_key}


async def test_partial_update_keeps_other_credentials(
    connectors: ConnectorRuntime, session: AsyncSession, team: Team
) -> None:
    await configure(
        connectors,
        session,
        team.workspace,
        "payments",
        credentials={"stripe_secret_key": "sk_1", "stripe_webhook_secret": "whsec_1"},
    )
    await configure(
        connectors,
        session,
        team.workspace,
        "payments",
        credentials={"stripe_secret_key": "sk_2"},
        settings={"provider": "stripe"},
    )
    config = await get_config(session, team.workspace, "payments")
    credentials, settings = secrets_and_settings(
        connectors, config, connectors.registry.connectors["payments"]
    )
    assert credentials == {"stripe_secret_key": "sk_2", "stripe_webhook_secret": "whsec_1"}
    assert settings["provider"] == "stripe" and settings["currency"] == "KES"
