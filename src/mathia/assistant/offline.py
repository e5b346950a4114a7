"""The provider that answers when no model is configured.

It never pretends to be a model: unless a rule recognises the request, it says
plainly that no AI model is configured. Rules let features without a model
still work: each maps the user's latest text to an answer (a string), an action
request (a `ToolCall`, handled like a model's), or None when it does not apply.
The first rule that answers wins. Asked again with the action's result, it answers
with that result as it is.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, Callable, Sequence

from mathia.assistant.providers import ChatRequest, Event, Finish, TextDelta, ToolCall

Rule = Callable[[str], str | ToolCall | None]

NO_MODEL = (
    "No AI model is configured on this server, so I can't answer that. "
    "An administrator can set ANTHROPIC_API_KEY, or MATHIA_OPENAI_BASE_URL with MATHIA_OPENAI_API_KEY, "
    "to connect one."
)


def new_call_id() -> str:
    """An id for a tool call a rule makes (models make their own)."""
    return f"offline_{secrets.token_hex(8)}"


class OfflineProvider:
    name = "offline"
    model = "none"

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = list(rules)

    async def aclose(self) -> None:
        """Nothing to release."""

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]:
        last = request.messages[-1] if request.messages else None
        if last is not None and last.tool_results:  # a rule's action ran: its result is the answer
            answer: str | ToolCall = "\n".join(r.content for r in last.tool_results)
        else:
            text = request.last_user_text
            answer = next((result for rule in self.rules if (result := rule(text)) is not None), NO_MODEL)
        if isinstance(answer, ToolCall):
            yield answer
        else:
            yield TextDelta(answer)
        stop_reason = "tool_use" if isinstance(answer, ToolCall) else "end_turn"
        yield Finish(
            provider=self.name, model=self.model, input_tokens=0, output_tokens=0, stop_reason=stop_reason
        )
