"""Settings, read once from the environment (and a `.env` file, if present).

Every field maps to `MATHIA_<FIELD>` unless `_ENV_NAMES` gives it a conventional
name (`DATABASE_URL`, `REDIS_URL`, the providers' own key variables).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
from dotenv import dotenv_values

_ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
}

# RFC 7518 (section 3.2) wants an HS256 key of at least 256 bits: a short key can be guessed
# offline from any one token, and then every token forged.
MIN_SECRET_BYTES = 32


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    data_dir: Path = Path(".mathia")
    # None means the embedded default: SQLite in data_dir, Redis started by the app.
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = ""
    debug: bool = False
    # Run the background worker inside the web process (the CLI sets it for the embedded default).
    embedded_worker: bool = False

    access_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    invite_ttl: int = 7 * 24 * 3600

    max_message_bytes: int = 8 * 1024
    max_frame_bytes: int = 64 * 1024
    # Characters of frames that may wait for one slow socket before it is closed (1013).
    ws_backlog_limit: Annotated[int, msgspec.Meta(gt=0)] = 4 * 1024 * 1024
    send_rate_limit: int = 30
    send_rate_window: int = 10
    # Requests per client address and connector to the plugins' /hooks routes, per window.
    hook_rate_limit: int = 300
    hook_rate_window: int = 60
    # A process whose presence heartbeat is older than this is dead: its sockets go offline.
    presence_ttl: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    login_attempts_per_account: int = 10
    login_attempts_per_ip: int = 50
    login_attempts_window: int = 15 * 60

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None

    # Assistant: model providers, tried in `ai_provider_order` (those configured), offline last.
    anthropic_model: str = "claude-sonnet-4-6"
    openai_base_url: str | None = None  # e.g. https://openrouter.ai/api/v1
    openai_api_key: str | None = None
    openai_model: str = "anthropic/claude-sonnet-4.6"
    ai_provider_order: str = "anthropic,openai"
    ai_max_tokens: int = 1024
    ai_context_tokens: int = 8000  # budget for the system prompt plus the history sent
    ai_connect_timeout: float = 5.0
    ai_first_token_timeout: float = 20.0
    ai_total_timeout: float = 120.0
    ai_attempts: int = 3  # per provider, for retryable failures before any text
    ai_backoff_base: float = 0.5
    ai_backoff_cap: float = 8.0  # longest wait between attempts, retry-after included
    ai_user_rate_limit: int = 20  # generations per user and window
    ai_workspace_rate_limit: int = 200  # generations per workspace and window
    ai_rate_window: int = 60
    # Mentions prepared at once per process; the rest wait so running answers keep the loop.
    ai_concurrent_preparations: Annotated[int, msgspec.Meta(ge=1)] = 2

    # connectors and actions
    plugins: str | None = None  # comma-separated entry-point names to load; unset = all installed
    connector_keys: str = ""  # comma-separated Fernet keys, newest first; empty = derived from secret_key
    action_rate_limit: int = 30  # calls per workspace and connector per window
    action_rate_window: int = 60
    approval_ttl: int = 24 * 3600
    approval_sweep_interval: int = 30  # how often the worker expires undecided approvals

    # Background jobs (saq).
    worker_concurrency: int = 50
    # Moderation: batch size and period of the classifying job; a batch taken by a worker that
    # died is reclaimed after `moderation_reclaim_seconds`.
    moderation_batch_size: int = 200
    moderation_interval: int = 3
    moderation_reclaim_seconds: int = 30
    moderation_offline_threshold: float = 0.8
    # With an AI model configured: messages per model call (the job's batch then), and how long
    # a call may take before that batch is judged offline instead (the job times out at 20 s).
    moderation_model_batch_size: int = 20
    moderation_model_timeout: float = 8.0
    # Seconds a worker holds a judged batch before acknowledging it. Zero in production; the
    # crash test sets it so that it can kill a worker while it holds a batch.
    moderation_hold_seconds: float = 0.0
    # Workspace policy defaults: flags before a mute, and how long it lasts.
    moderation_flag_limit: int = 3
    moderation_mute_seconds: int = 15 * 60
    # Reminders: how often the sweep looks for due, undelivered reminders.
    reminder_sweep_interval: int = 30

    # Memory: notes, documents and retrieval. Embeddings (for pgvector) come from an
    # OpenAI-compatible `/embeddings` endpoint when its base URL is set.
    max_document_bytes: int = 5 * 1024 * 1024
    document_chunk_tokens: int = 250
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_model: str = "text-embedding-3-small"

    # Wallet: credit units are millionths of a credit. Prices are credit units per million
    # tokens, as JSON {"model": {"input": n, "output": n}}; "*" prices any other model.
    wallet_starting_grant: int = 1_000_000
    wallet_min_balance: int = 10_000
    wallet_prices: str = '{"*": {"input": 3000000, "output": 15000000}}'

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'mathia.db').resolve()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `environ` (default: `.env` overlaid by the process environment)."""
        if environ is None:
            environ = {**{k: v for k, v in dotenv_values().items() if v is not None}, **os.environ}
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            value = environ.get(_ENV_NAMES.get(name, f"MATHIA_{name.upper()}"))
            if value not in (None, ""):
                raw[name] = value
        raw.update(overrides)
        try:
            settings = msgspec.convert(raw, cls, strict=False, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            raise SystemExit(f"invalid configuration: {exc}") from None
        if not settings.secret_key:
            settings = msgspec.structs.replace(settings, secret_key=_data_dir_secret(settings.data_dir))
        elif (size := len(settings.secret_key.encode())) < MIN_SECRET_BYTES:
            raise SystemExit(
                f"invalid configuration: MATHIA_SECRET_KEY has {size} bytes; "
                f"it signs access tokens and needs at least {MIN_SECRET_BYTES}: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))' makes one"
            )
        return settings


def _decode(type_: type, value: Any) -> Any:
    if type_ is Path:
        return Path(value)
    raise NotImplementedError


def _data_dir_secret(data_dir: Path) -> str:
    """The signing key of the embedded default: made once, kept in the data folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or just now by another process
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
