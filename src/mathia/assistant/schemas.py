from __future__ import annotations

import datetime as dt
from uuid import UUID

import msgspec


class UsageRow(msgspec.Struct, frozen=True):
    """A user's model calls on one day (UTC); `user_id` is null once the user was deleted."""

    day: dt.date
    user_id: UUID | None
    display_name: str | None
    calls: int
    input_tokens: int
    output_tokens: int


class UsageTotals(msgspec.Struct, frozen=True):
    calls: int
    input_tokens: int
    output_tokens: int


class UsageReport(msgspec.Struct, frozen=True, rename={"start": "from", "end": "to"}):
    start: dt.date | None
    end: dt.date | None
    rows: list[UsageRow]
    totals: UsageTotals
