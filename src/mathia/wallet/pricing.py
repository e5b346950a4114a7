"""AI prices from settings: credit units per million input and output tokens, per model."""

from __future__ import annotations

import functools
from typing import Annotated

import msgspec

NonNegative = Annotated[int, msgspec.Meta(ge=0)]


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    input: NonNegative
    output: NonNegative


@functools.cache
def parse_prices(text: str) -> dict[str, Price]:
    try:
        prices = msgspec.json.decode(text, type=dict[str, Price])
    except msgspec.DecodeError as exc:
        raise ValueError(f"wallet_prices: {exc}") from None
    if "*" not in prices:
        raise ValueError('wallet_prices: needs a "*" entry that prices any model not listed')
    return prices


def cost(prices_text: str, model: str, input_tokens: int, output_tokens: int) -> int:
    """Credit units for one answer, rounded up: a fraction of a unit is still charged."""
    prices = parse_prices(prices_text)
    price = prices.get(model, prices["*"])
    micro = input_tokens * price.input + output_tokens * price.output
    return -(-micro // 1_000_000)
