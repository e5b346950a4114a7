"""Roll dice: an example Mathia plugin."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Annotated

import msgspec

from mathia.connectors import (
    Action,
    ActionContext,
    ActionResult,
    Field,
    HookRequest,
    HookResponse,
    Route,
    hookimpl,
)


class RollParams(msgspec.Struct, forbid_unknown_fields=True):
    dice: Annotated[int, msgspec.Meta(ge=1, le=20, description="how many dice")] = 1
    sides: Annotated[int, msgspec.Meta(ge=2, le=100, description="sides of each die")] = 6


async def roll(ctx: ActionContext, params: RollParams) -> ActionResult:
    rolls = [random.randint(1, params.sides) for _ in range(params.dice)]
    return ActionResult(f"{params.dice}d{params.sides}: {rolls} = {sum(rolls)}", {"rolls": rolls})


async def ping(request: HookRequest) -> HookResponse:
    return HookResponse(200, f"pong from {request.workspace.id}")


@dataclass(frozen=True)
class DiceConnector:
    name: str = "dice"
    version: str = "0.1.0"
    description: str = "Roll dice"
    actions: tuple[Action, ...] = (
        Action(
            "roll", "Roll dice, e.g. 2d6", RollParams, roll, phrases=(r"roll (?P<dice>\d+)d(?P<sides>\d+)",)
        ),
    )
    credentials: tuple[Field, ...] = ()
    settings: tuple[Field, ...] = ()
    permissions: tuple[str, ...] = ()


@hookimpl
def mathia_connectors() -> list[DiceConnector]:
    return [DiceConnector()]


@hookimpl
def mathia_routes() -> list[Route]:
    return [Route("dice", "/ping", ping, methods=("GET",))]
