"""Server-sent events, as both model APIs stream them: the `data` of each event.

`data:` lines are joined (with newlines) when an event has several, `:` comment lines
are skipped, and `event:` lines are dropped: both APIs repeat the event's type in its data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data` of each server-sent event (multi-line data joined by newlines)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith(":"):
            continue
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)
