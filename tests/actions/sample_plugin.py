"""A plugin for the router tests: slow, crashing and echoing actions, with a secret credential."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgspec

from mathia.connectors import Action, ActionContext, ActionResult, Field, hookimpl


class Empty(msgspec.Struct):
    pass


class Note(msgspec.Struct):
    note: str = ""
    password: str = ""


async def slow(ctx: ActionContext, params: Empty) -> ActionResult:
    await asyncio.sleep(5)
    return ActionResult("too late")


async def crash(ctx: ActionContext, params: Note) -> ActionResult:
    # A careless error message that quotes the credential: it must not reach logs or the audit.
    raise RuntimeError(f"upstream refused token {ctx.credentials['token']}")


async def echo(ctx: ActionContext, params: Note) -> ActionResult:
    return ActionResult(f"token is {ctx.credentials['token']}")


@dataclass
class SampleConnector:
    name: str = "sample"
    version: str = "1"
    description: str = "test actions"
    actions: tuple[Action, ...] = (
        Action("slow", "sleeps", Empty, slow, timeout=0.2),
        Action("crash", "raises", Note, crash),
        Action("echo", "echoes", Note, echo),
    )
    credentials: tuple[Field, ...] = (Field("token", "a secret"),)
    settings: tuple[Field, ...] = ()
    permissions: tuple[str, ...] = ()


@hookimpl
def mathia_connectors() -> list[SampleConnector]:
    return [SampleConnector()]
