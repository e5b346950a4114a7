from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mathia.connectors.cli import plugins
from tests import SECRET_KEY
from tests.connectors import installing


def test_mathia_plugins_lists_name_version_connectors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installing.install(monkeypatch, tmp_path, "mathia_broken", "broken", installing.BROKEN_IMPORT)
    result = CliRunner().invoke(plugins, [])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "weather 0.1.0 weather" in lines and "payments 0.1.0 payments" in lines
    assert lines[0].startswith("builtin ") and lines[0].endswith(" builtin")
    assert "broken: not loaded (ImportError: this plugin needs a library" in result.stderr


def test_mathia_plugins_honours_the_allowed_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATHIA_PLUGINS", "weather")
    lines = CliRunner().invoke(plugins, []).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["builtin", "weather"]


def test_rotate_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from mathia.config import Settings
    from mathia.db.migrations import upgrade

    upgrade(Settings.from_env({}, data_dir=tmp_path, secret_key=SECRET_KEY))
    monkeypatch.setenv("MATHIA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MATHIA_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MATHIA_CONNECTOR_KEYS", Fernet.generate_key().decode())
    result = CliRunner().invoke(plugins, ["rotate-keys"])
    assert (result.exit_code, result.stdout) == (0, "re-encrypted 0 secrets\n")
