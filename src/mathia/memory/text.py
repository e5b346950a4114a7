"""Text handling for memory: search terms and splitting documents into chunks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mathia.tokens import count_tokens

# Common English words that would match almost every chunk and drown the useful terms.
STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me
    more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves tell please know mathia""".split()  # noqa: SIM905
)
_WORD = re.compile(r"\w+")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_TERMS = 32


def search_terms(query: str) -> list[str]:
    """The distinct content words of a query, lower-cased, in order. Only word characters
    survive, so the terms are safe to splice into FTS5 and tsquery syntax."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if len(word) > 1 and word not in STOPWORDS and not word.startswith("_"):
            seen.setdefault(word.strip("_"), None)
    return [term for term in seen if term][:MAX_TERMS]


@dataclass(frozen=True)
class Chunk:
    section: str
    body: str
    tokens: int


def markdown_sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading, text) pairs: each heading opens a section that runs to the next heading."""
    heading, lines = "", list[str]()
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            yield heading, "\n".join(lines)
            heading, lines = match.group(2), []
        else:
            lines.append(line)
    yield heading, "\n".join(lines)


def chunk_sections(sections: Iterable[tuple[str, str]], max_tokens: int) -> list[Chunk]:
    """Pack each section's paragraphs into chunks of at most `max_tokens`; chunks never span
    sections, so each keeps the heading (or page) it came from."""
    chunks: list[Chunk] = []
    for section, text in sections:
        section = section.strip()[:255]
        pieces: list[str] = []
        size = 0
        for piece in _pieces(text, max_tokens):
            tokens = count_tokens(piece)
            if pieces and size + tokens > max_tokens:
                chunks.append(_chunk(section, pieces))
                pieces, size = [], 0
            pieces.append(piece)
            size += tokens
        if pieces:
            chunks.append(_chunk(section, pieces))
    return chunks


def _chunk(section: str, pieces: list[str]) -> Chunk:
    body = "\n\n".join(pieces)
    return Chunk(section=section, body=body, tokens=count_tokens(body))


def _pieces(text: str, max_tokens: int) -> Iterator[str]:
    """Paragraphs, with any paragraph over the limit cut at sentence ends, then at words."""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count_tokens(paragraph) <= max_tokens:
            yield paragraph
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            if count_tokens(sentence) <= max_tokens:
                yield sentence
                continue
            words = sentence.split()
            # Words average well under two tokens, so half the limit in words rarely overshoots it.
            step = max(1, max_tokens // 2)
            for start in range(0, len(words), step):
                yield " ".join(words[start : start + step])
