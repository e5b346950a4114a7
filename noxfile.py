"""Automation. `uv run nox` runs every session below, in the project's uv environment."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"  # uv already built the environment (uv.lock)
nox.options.sessions = ["lint", "typecheck", "tests", "e2e"]
nox.options.error_on_external_run = False


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict, on src/mathia."""
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The suite, against PostgreSQL and Redis (the SQL layer also against SQLite)."""
    session.run("pytest", "-m", "not e2e", *session.posargs)


@nox.session
def e2e(session: nox.Session) -> None:
    """The browser client in headless Chromium against `mathia serve`; refreshes docs/screenshots."""
    session.env["MATHIA_SCREENSHOT_DIR"] = "docs/screenshots"
    session.run("pytest", "tests/e2e", "-m", "e2e", *session.posargs)
