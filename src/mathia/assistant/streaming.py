"""`@mathia` in a room: build the prompt, stream the answer to every member, store it.

A generation runs as a task in the process that received the mention. Its frames
(`ai.start`, `ai.delta`, `ai.tool`, `ai.done`, `ai.error`) go out on the process's room
bus like every room frame: straight to its own sockets, and through the room's Redis
channel to members connected to other processes. The answer is stored when it ends,
with the room's next seq, under the id announced in `ai.start`.

Stopping: `ai.stop` from any member, on any process, publishes the message id on
STOP_CHANNEL; the process running that generation cancels it and keeps what was
written, marked incomplete."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, Literal

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mathia.assistant.chain import ProviderChain
from mathia.assistant.context import fit_request
from mathia.assistant.limits import enforce_ai_rate_limit
from mathia.assistant.providers import (
    ChatMessage,
    ChatRequest,
    Finish,
    ProviderError,
    StreamInterrupted,
    ToolCall,
    ToolResult,
)
from mathia.assistant.services import record_usage
from mathia.auth.models import User
from mathia.db import session_scope
from mathia.errors import MathiaError
from mathia.rooms.models import Message, Room, SenderKind
from mathia.rooms.realtime import notify_user
from mathia.rooms.services import ASSISTANT_NAME, MENTION, message_out, post_message
from mathia.runtime import Runtime
from mathia.tasks import cancel
from mathia.tenants.models import Workspace

log = logging.getLogger(__name__)

STOP_CHANNEL = "mathia:ai:stop"
HISTORY_MESSAGES = 50
# Model calls per answer: each tool round costs one more.
MAX_MODEL_CALLS = 4
_REGISTRATION_TTL = 15 * 60
INCOMPLETE_MARK = " [incomplete]"

# Runs one tool call for the turn; returns its result, for the model to answer from. Wired by the app.
ToolRunner = Callable[["Turn", AsyncSession, ToolCall], Awaitable[str]]
# Adds context sections to the system prompt for the turn (memory, goals). Wired by the app.
ContextSource = Callable[["Turn", AsyncSession], Awaitable[str]]


class Turn:
    """One generation: who asked, where, and the id its answer will have."""

    def __init__(self, user: User, room: Room, trigger: Message) -> None:
        self.user = user
        self.room = room
        self.trigger = trigger
        self.message_id = uuid.uuid4()


def mentions_assistant(body: str) -> bool:
    return MENTION.search(body) is not None


class Assistant:
    def __init__(
        self,
        runtime: Runtime,
        chain: ProviderChain,
        *,
        tools: ToolRunner | None = None,
        tool_specs: Callable[[Turn, AsyncSession], Awaitable[list[Any]]] | None = None,
        context: list[ContextSource] | None = None,
        before: list[Callable[[Turn, AsyncSession], Awaitable[None]]] | None = None,
        after: list[Callable[[Turn, AsyncSession, list[Finish]], Awaitable[None]]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.chain = chain
        self.run_tool = tools
        self.tool_specs = tool_specs
        self.context = context or []
        self.before = before or []  # checks before any model call (credits); raise MathiaError to refuse
        # Bookkeeping of the answer's model calls (billing), in the answer's transaction.
        self.after = after or []
        self.running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.stopped: set[uuid.UUID] = set()
        self.preparing = asyncio.Semaphore(runtime.settings.ai_concurrent_preparations)
        self._stop_listener: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._stop_listener = asyncio.create_task(self._listen_for_stops())

    async def aclose(self) -> None:
        await cancel(*self.running.values(), self._stop_listener)
        await self.chain.aclose()

    async def on_message(self, user: User, room: Room, message: Message) -> None:
        """Message listener: a member's message that mentions @mathia starts a generation."""
        if not mentions_assistant(message.body):
            return
        turn = Turn(user, room, message)
        task = asyncio.create_task(self.generate(turn))
        self.running[turn.message_id] = task
        task.add_done_callback(lambda _: self._forget(turn.message_id))

    def _forget(self, message_id: uuid.UUID) -> None:
        self.running.pop(message_id, None)
        self.stopped.discard(message_id)

    # --- stopping ----------------------------------------------------------------------------
    async def generation_room(self, message_id: uuid.UUID) -> uuid.UUID | None:
        room = await self.runtime.redis.get(f"mathia:ai:generation:{message_id}")
        return uuid.UUID(room if isinstance(room, str) else room.decode()) if room else None

    async def request_stop(self, message_id: uuid.UUID) -> None:
        await self.runtime.redis.publish(STOP_CHANNEL, str(message_id))

    def _stop(self, message_id: uuid.UUID) -> None:
        if task := self.running.get(message_id):
            self.stopped.add(message_id)
            task.cancel()

    async def _listen_for_stops(self) -> None:
        while True:  # outlives Redis restarts: a lost subscription would make ai.stop a no-op
            try:
                async with self.runtime.redis.pubsub() as pubsub:
                    await pubsub.subscribe(STOP_CHANNEL)
                    async for event in pubsub.listen():
                        if event["type"] == "message":
                            self._stop(uuid.UUID(event["data"].decode()))
            except RedisError as exc:
                log.warning("listening for ai.stop failed (%s); retrying", exc)
                await asyncio.sleep(1)

    # --- generating --------------------------------------------------------------------------
    async def generate(self, turn: Turn) -> None:
        redis, room_id = self.runtime.redis, turn.room.id
        try:
            async with self.preparing:
                request = await self._prepare(turn)
        except MathiaError as exc:
            await notify_user(
                redis,
                turn.user.id,
                {"type": "error", "code": exc.code, "detail": exc.detail, "room_id": room_id},
            )
            return
        await redis.set(f"mathia:ai:generation:{turn.message_id}", str(room_id), ex=_REGISTRATION_TTL)
        await self.runtime.room_bus.publish(
            room_id, {"type": "ai.start", "room_id": room_id, "message_id": turn.message_id}
        )
        parts: list[str] = []
        calls: list[Finish] = []
        error: str | None = None
        try:
            for call_number in range(1, MAX_MODEL_CALLS + 1):
                asked: list[ToolCall] = []
                round_text: list[str] = []
                async with aclosing(self.chain.stream(request)) as events:
                    async for event in events:
                        if isinstance(event, Finish):
                            calls.append(event)
                        elif isinstance(event, ToolCall):
                            asked.append(event)
                        else:
                            # A new round's text starts a new paragraph after the last round's.
                            text = "\n\n" + event.text if parts and not round_text else event.text
                            round_text.append(event.text)
                            parts.append(text)
                            await self._publish_delta(turn, text)
                if not asked:
                    break
                if call_number == MAX_MODEL_CALLS:  # no call is left to use their results: don't act
                    error = f"the model was still calling tools after {MAX_MODEL_CALLS} calls"
                    break
                names = [call.name for call in asked]
                frame = {"type": "ai.tool", "room_id": room_id, "message_id": turn.message_id, "tools": names}
                await self.runtime.room_bus.publish(room_id, frame)
                # The model answers from the results: they are not shown as they are.
                results = [ToolResult(call.id, await self._tool(turn, call)) for call in asked]
                request = request.after_tools("".join(round_text), asked, results)
        except asyncio.CancelledError:
            # A stop is this task's normal end, not a cancellation of its caller: store what was written.
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            error = "stopped"
        except StreamInterrupted as exc:
            error = f"the model stopped answering: {exc}"
        except ProviderError as exc:
            error = f"no model could answer: {exc}"
        except Exception:
            log.exception("generation %s in room %s failed", turn.message_id, room_id)
            error = "the assistant failed unexpectedly"
        await asyncio.shield(self._finish(turn, "".join(parts), calls, error))

    async def _publish_delta(self, turn: Turn, text: str) -> None:
        frame = {"type": "ai.delta", "room_id": turn.room.id, "message_id": turn.message_id, "text": text}
        await self.runtime.room_bus.publish(turn.room.id, frame)
        if turn.message_id in self.stopped:  # cancellation, unless something swallowed it
            raise asyncio.CancelledError

    async def _prepare(self, turn: Turn) -> ChatRequest:
        settings = self.runtime.settings
        await enforce_ai_rate_limit(
            self.runtime.redis, settings, workspace_id=turn.room.tenant_id, user_id=turn.user.id
        )
        async with session_scope(self.runtime.db) as session:
            for check in self.before:
                await check(turn, session)
            workspace = await session.get_one(Workspace, turn.room.tenant_id)
            sections = [
                f"You are {ASSISTANT_NAME}, the assistant of the workspace \u201c{workspace.name}\u201d, "
                f"answering in the room \u201c{turn.room.name}\u201d. Be brief and concrete. "
                "Messages from members start with their name."
            ]
            sections += [text for source in self.context if (text := await source(turn, session))]
            history = await _history(session, turn.room.id, turn.trigger.seq)
            tools = await self.tool_specs(turn, session) if self.tool_specs else []
        request = ChatRequest(
            messages=history, system="\n\n".join(sections), tools=tools, question=turn.trigger.body
        )
        return fit_request(request, settings.ai_context_tokens)

    async def _tool(self, turn: Turn, call: ToolCall) -> str:
        if self.run_tool is None:
            return f"I can't run {call.name} here."
        async with session_scope(self.runtime.db) as session:
            return await self.run_tool(turn, session, call)

    async def _finish(self, turn: Turn, text: str, calls: list[Finish], error: str | None) -> None:
        redis, room_id = self.runtime.redis, turn.room.id
        body = (text or "(no answer)") + INCOMPLETE_MARK if error else text
        if body:
            async with session_scope(self.runtime.db) as session:
                message = await post_message(
                    session,
                    room=turn.room,
                    body=body,
                    sender_kind=SenderKind.ASSISTANT,
                    message_id=turn.message_id,
                )
                for call in calls:
                    await record_usage(
                        session,
                        call,
                        workspace_id=turn.room.tenant_id,
                        user_id=turn.user.id,
                        room_id=room_id,
                        message_id=message.id,
                    )
                if calls:
                    for bookkeeping in self.after:
                        await bookkeeping(turn, session, calls)
            stored = message_out(message, ASSISTANT_NAME)
        await redis.delete(f"mathia:ai:generation:{turn.message_id}")
        if error:
            await self.runtime.room_bus.publish(
                room_id,
                {"type": "ai.error", "room_id": room_id, "message_id": turn.message_id, "detail": error},
            )
        if body:
            # Carries the stored message and its seq: the gateway orders it like a message.new.
            await self.runtime.room_bus.publish(room_id, {"type": "ai.done", "message": stored})


async def _history(session: AsyncSession, room_id: uuid.UUID, up_to_seq: int) -> list[ChatMessage]:
    """The room's recent messages as a conversation: members' turns carry their names, and
    consecutive turns of one side are merged (the Messages API wants them alternating)."""
    rows = (
        await session.execute(
            select(Message, User.display_name)
            .outerjoin(User, User.id == Message.sender_id)
            .where(Message.room_id == room_id, Message.seq <= up_to_seq)
            .order_by(Message.seq.desc())
            .limit(HISTORY_MESSAGES)
        )
    ).all()
    history: list[ChatMessage] = []
    for message, name in reversed(rows):
        role: Literal["user", "assistant"] = (
            "assistant" if message.sender_kind == SenderKind.ASSISTANT else "user"
        )
        content = message.body if role == "assistant" else f"{name or 'someone'}: {message.body}"
        if history and history[-1].role == role:
            history[-1] = ChatMessage(role, f"{history[-1].content}\n{content}")
        else:
            history.append(ChatMessage(role, content))
    while history and history[0].role == "assistant":
        history.pop(0)
    return history
