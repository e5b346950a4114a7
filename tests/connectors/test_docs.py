"""Every hook is documented in docs/plugins.md with an example, and the example plugin there works."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from mathia.connectors import manager
from mathia.connectors.testing import FakeWorkspace, call, load_plugin, make_context

ROOT = Path(__file__).parents[2]
DOCS = (ROOT / "docs" / "plugins.md").read_text()


def hook_names() -> list[str]:
    return sorted(name for name in vars(manager.plugin_manager().hook) if name.startswith("mathia_"))


def test_there_are_hooks() -> None:
    assert {"mathia_connectors", "mathia_routes", "mathia_jobs", "mathia_startup"} <= set(hook_names())


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_with_an_example(hook: str) -> None:
    sections = re.split(r"^### ", DOCS, flags=re.MULTILINE)
    section = next((s for s in sections if s.startswith(f"`{hook}`")), None)
    assert section is not None, f"docs/plugins.md has no '### `{hook}`' section"
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert example is not None and f"def {hook}(" in example.group(1) and "@hookimpl" in example.group(1)


async def test_the_example_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "docs" / "example-plugin" / "src"))
    monkeypatch.delitem(sys.modules, "mathia_dice", raising=False)
    import mathia_dice

    registry = load_plugin(mathia_dice)
    connector = registry.connectors["dice"]
    async with httpx.AsyncClient() as http:
        result = await call(
            connector.actions[0], make_context(connector, FakeWorkspace(), http), {"dice": 2, "sides": 6}
        )
    assert len(result.data["rolls"]) == 2
