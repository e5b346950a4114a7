from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

import msgspec

# Far inside BIGINT, so no sum of adjustments can overflow a balance.
MAX_AMOUNT = 10**15


class WalletOut(msgspec.Struct):
    account_id: UUID
    balance: int


class AdjustmentIn(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]  # positive credits the workspace
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=r"\S")]
    idempotency_key: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class AdjustmentOut(msgspec.Struct):
    transfer_id: UUID
    amount: int
    balance: int
    replayed: bool


class Counterparty(msgspec.Struct, frozen=True):
    account_id: UUID
    kind: str  # "system" or "workspace"
    name: str | None  # the system account's name


class StatementLine(msgspec.Struct, frozen=True):
    seq: int
    transfer_id: UUID
    kind: str
    memo: str
    amount: int  # negative when money left the account
    balance_after: int
    counterparty: Counterparty
    created_at: dt.datetime


class Statement(msgspec.Struct, frozen=True):
    account_id: UUID
    balance: int
    items: list[StatementLine]  # newest first; pass the last seq as `before_seq` for the next page
    has_more: bool
