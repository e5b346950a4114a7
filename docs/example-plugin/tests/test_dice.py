import httpx
import mathia_dice

from mathia.connectors.testing import FakeWorkspace, call, load_plugin, make_context, make_hook_request


async def test_roll() -> None:
    registry = load_plugin(mathia_dice)  # fails if the server would skip the plugin
    connector = registry.connectors["dice"]
    async with httpx.AsyncClient() as http:
        ctx = make_context(connector, FakeWorkspace(), http)
        result = await call(connector.actions[0], ctx, {"dice": 3, "sides": 6})
    assert len(result.data["rolls"]) == 3 and all(1 <= r <= 6 for r in result.data["rolls"])


async def test_ping() -> None:
    workspace = FakeWorkspace()
    async with httpx.AsyncClient() as http:
        request = make_hook_request(mathia_dice.DiceConnector(), workspace, http, path="/ping", method="GET")
        answer = await mathia_dice.ping(request)
    assert (answer.status, answer.body) == (200, f"pong from {workspace.id}")
