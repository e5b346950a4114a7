"""Discovery through entry points, and plugins that fail: each is logged and skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mathia.connectors import manager
from tests.connectors import installing


def test_installed_plugins_are_discovered() -> None:
    registry = manager.load()
    assert registry.plugins["weather"].connectors == ["weather"]
    assert registry.plugins["payments"].version == "0.1.0"
    assert ("payments", "/stripe") in registry.routes
    assert registry.failures == {}


def test_allowed_list_restricts_loading() -> None:
    registry = manager.load(allowed=["weather"])
    assert set(registry.plugins) == {"weather"}


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (installing.BROKEN_IMPORT, "could not be loaded"),
        (installing.MISSPELT_HOOK, "unknown hook 'mathia_conectors'"),
        (installing.RAISING_HOOK, "no configuration file"),
        (installing.NOT_A_CONNECTOR, "lacks attributes of the Connector protocol"),
    ],
)
def test_a_failing_plugin_is_logged_and_skipped(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    source: str,
    reason: str,
) -> None:
    installing.install(monkeypatch, tmp_path, "mathia_bad", "bad", source)
    installing.install(monkeypatch, tmp_path / "good", "mathia_hello", "hello", installing.HELLO)
    with caplog.at_level(logging.ERROR, "mathia.connectors.manager"):
        registry = manager.load()
    assert "bad" in registry.failures and "bad" not in registry.plugins
    assert reason in caplog.text + registry.failures["bad"]
    assert {"weather", "payments", "hello"} <= set(registry.plugins)  # the others still load


def test_a_second_connector_with_the_same_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Installed last, so found first: the first to register a name keeps it.
    installing.install(monkeypatch, tmp_path / "b", "mathia_hello_again", "hello-again", installing.DUPLICATE)
    installing.install(monkeypatch, tmp_path / "a", "mathia_hello", "hello", installing.HELLO)
    registry = manager.load()
    assert registry.plugins["hello"].version == "0.3.0"
    assert "already registered" in registry.failures["hello-again"]
