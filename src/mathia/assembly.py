"""Where the domains meet: the assistant's tools, context and billing, moderation's
hooks on the send path. Each domain stays ignorant of the others; this module
connects them once per process."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mathia.actions.router import offline_rules, run_action, tools_for
from mathia.assistant.chain import build_chain
from mathia.assistant.providers import Finish, ToolCall, ToolSpec
from mathia.assistant.streaming import Assistant, Turn
from mathia.auth.models import User
from mathia.connectors.services import ConnectorRuntime
from mathia.errors import Muted
from mathia.jobs import queue_on
from mathia.memory import profiles, search
from mathia.memory.embeddings import embedder_from
from mathia.memory.tools import MEMORY_TOOLS, NOTE_RULES, is_memory_tool, run_memory_tool
from mathia.moderation.services import buffer_message, muted_until
from mathia.reminders.tools import REMINDER_RULES, REMINDER_TOOLS, is_reminder_tool, run_reminder_tool
from mathia.rooms.models import Message, Room
from mathia.runtime import Runtime
from mathia.wallet.services import charge_ai_usage, ensure_can_generate

# Share of the context budget that retrieved notes and documents may take.
MEMORY_SHARE = 0.4


def wire_moderation(runtime: Runtime) -> None:
    async def refuse_muted(session: AsyncSession, user: User, room: Room) -> None:
        if until := await muted_until(session, room.tenant_id, user.id):
            raise Muted(f"you are muted in this workspace until {until.isoformat()}", until=until.isoformat())

    async def buffer(_user: User, _room: Room, message: Message) -> None:
        await buffer_message(runtime.redis, message)

    runtime.send_checks.append(refuse_muted)
    runtime.message_listeners.append(buffer)


def build_assistant(runtime: Runtime, connectors: ConnectorRuntime) -> Assistant:
    settings = runtime.settings
    embedder = embedder_from(settings, runtime.http)  # vector search, when configured and available

    reminders_queue = queue_on(runtime.redis)

    async def tool_specs(turn: Turn, session: AsyncSession) -> list[ToolSpec]:
        return [
            *MEMORY_TOOLS,
            *REMINDER_TOOLS,
            *await tools_for(connectors, session, turn.room.tenant_id, turn.user.id),
        ]

    async def run_tool(turn: Turn, session: AsyncSession, call: ToolCall) -> str:
        if is_memory_tool(call.name):
            return await run_memory_tool(
                session,
                name=call.name,
                arguments=call.arguments,
                room_id=turn.room.id,
                user_id=turn.user.id,
                embedder=embedder,
            )
        if is_reminder_tool(call.name):
            return await run_reminder_tool(
                session,
                reminders_queue,
                name=call.name,
                arguments=call.arguments,
                room=turn.room,
                user_id=turn.user.id,
            )
        outcome = await run_action(
            connectors,
            session,
            tenant_id=turn.room.tenant_id,
            user_id=turn.user.id,
            room_id=turn.room.id,
            tool=call.name,
            arguments=call.arguments,
        )
        return outcome.text

    async def about_the_user(turn: Turn, session: AsyncSession) -> str:
        return await profiles.user_context(session, turn.user.id)

    async def memory(turn: Turn, session: AsyncSession) -> str:
        snippets = await search.retrieve(
            session,
            tenant_id=turn.room.tenant_id,
            room_id=turn.room.id,
            user_id=turn.user.id,
            query=turn.trigger.body,
            token_budget=int(settings.ai_context_tokens * MEMORY_SHARE),
            embedder=embedder,
        )
        return search.format_context(snippets)

    async def credits(turn: Turn, session: AsyncSession) -> None:
        await ensure_can_generate(session, turn.room.tenant_id, settings=settings)

    async def charge(turn: Turn, session: AsyncSession, calls: list[Finish]) -> None:
        await charge_ai_usage(session, turn.room.tenant_id, f"ai:{turn.message_id}", calls, settings=settings)

    chain = build_chain(
        settings, http_client=runtime.http, rules=[*NOTE_RULES, *REMINDER_RULES, *offline_rules(connectors)]
    )
    assistant = Assistant(
        runtime,
        chain,
        tools=run_tool,
        tool_specs=tool_specs,
        context=[about_the_user, memory],
        before=[credits],
        after=[charge],
    )
    runtime.message_listeners.append(assistant.on_message)
    return assistant
