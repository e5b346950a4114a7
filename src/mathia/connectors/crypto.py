"""Encryption of connector credentials and OAuth tokens at rest.

`connector_keys` lists Fernet keys, newest first: the first encrypts, all decrypt, so a
key is rotated by prepending a new one and running `rotate_credentials`. Without keys, one
is derived from the secret key."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mathia.config import Settings


class Crypto:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> Crypto:
        keys = [k.strip() for k in settings.connector_keys.split(",") if k.strip()]
        if not keys:
            digest = hashlib.sha256(b"mathia-connectors:" + settings.secret_key.encode()).digest()
            keys = [base64.urlsafe_b64encode(digest).decode()]
        return cls(keys)

    def encrypt(self, value: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(msgspec.json.encode(value)).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            value: dict[str, Any] = msgspec.json.decode(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ValueError("stored credentials cannot be decrypted with the configured keys") from None
        return value

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()
