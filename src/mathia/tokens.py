"""Counting tokens offline, for prompt budgets and document chunks.

Claude's tokenizer is not published and the API's count endpoint needs the network, so
counts use OpenAI's cl100k_base BPE (shipped inside `bpe_openai`): close enough to budget
a context window, not an exact bill; usage records take the provider's own counts.
"""

from __future__ import annotations

from functools import cache

import bpe_openai


@cache
def encoding() -> bpe_openai.Encoding:
    """The one shared encoding. Building it takes tens of milliseconds of CPU, so the app
    builds it at startup rather than inside the first request, where it would stall every
    stream in the process."""
    return bpe_openai.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text)) if text else 0
