"""Install a plugin into the environment the way a wheel does: a package beside a
`.dist-info` holding its metadata and `entry_points.txt`, in a directory of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def install(monkeypatch: pytest.MonkeyPatch, site: Path, package: str, entry: str, source: str) -> None:
    monkeypatch.delitem(sys.modules, package, raising=False)  # a module an earlier test imported
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source)
    dist = site / f"{package}-0.3.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.3.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[mathia]\n{entry} = {package}\n")
    monkeypatch.syspath_prepend(str(site))  # searched first; also invalidates the import caches


HELLO = """
from dataclasses import dataclass

import msgspec

from mathia.connectors import Action, ActionResult, hookimpl


class Greet(msgspec.Struct):
    name: str


async def greet(ctx, params):
    return ActionResult(f"Hello, {params.name}, from workspace {ctx.workspace.id}")


@dataclass
class Hello:
    name: str = "hello"
    version: str = "0.3.0"
    description: str = "says hello"
    actions: tuple = (Action("greet", "Greet someone", Greet, greet),)
    credentials: tuple = ()
    settings: tuple = ()
    permissions: tuple = ()


@hookimpl
def mathia_connectors():
    return [Hello()]
"""

BROKEN_IMPORT = "raise ImportError('this plugin needs a library that is not installed')\n"

MISSPELT_HOOK = """
from mathia.connectors import hookimpl


@hookimpl
def mathia_conectors():
    return []
"""

RAISING_HOOK = """
from mathia.connectors import hookimpl


@hookimpl
def mathia_connectors():
    raise RuntimeError("no configuration file")
"""

NOT_A_CONNECTOR = """
from mathia.connectors import hookimpl


@hookimpl
def mathia_connectors():
    return [object()]
"""

DUPLICATE = HELLO.replace('version: str = "0.3.0"', 'version: str = "9"')
