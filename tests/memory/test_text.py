from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mathia.memory.extract import extract
from mathia.memory.text import chunk_sections, markdown_sections, search_terms
from mathia.tokens import count_tokens
from tests.memory.conftest import CORPUS
from tests.memory.pdf import make_pdf


def test_search_terms_keep_content_words_only() -> None:
    assert search_terms("What is the LATE fee, if I pay after the 5th?!") == ["late", "fee", "pay", "5th"]
    assert search_terms('"; DROP TABLE note; -- OR * NEAR(') == ["drop", "table", "note", "near"]
    assert search_terms("the of and") == []


@given(st.text(max_size=300))
def test_search_terms_are_plain_words(query: str) -> None:
    # Anything spliced into FTS5 or tsquery syntax is made of word characters only.
    assert all(term.isalnum() or "_" in term for term in search_terms(query))
    assert all('"' not in term and "|" not in term and "&" not in term for term in search_terms(query))


def test_markdown_sections_follow_headings() -> None:
    text = "intro\n# One\nfirst\n## Two ##\nsecond"
    assert list(markdown_sections(text)) == [("", "intro"), ("One", "first"), ("Two", "second")]


def test_chunks_stay_under_the_limit_and_keep_every_word() -> None:
    text = (CORPUS / "intro-statistics-course.md").read_text() + "\n\n" + " ".join(["sentence."] * 400)
    chunks = chunk_sections(markdown_sections(text), max_tokens=60)
    assert all(chunk.tokens <= 60 for chunk in chunks)
    assert {chunk.section for chunk in chunks} >= {"Grading", "Office hours", "P-values and significance"}
    original = [word for _, body in markdown_sections(text) for word in body.split()]
    assert [word for chunk in chunks for word in chunk.body.split()] == original
    assert count_tokens("hello world") == 2


def test_pdf_pages_become_sections() -> None:
    extracted = extract("notes.pdf", "application/octet-stream", make_pdf(["Alpha page", "Beta page"]))
    assert extracted.content_type == "application/pdf"
    assert extracted.sections == [("page 1", "Alpha page"), ("page 2", "Beta page")]
    assert extract("x", "text/markdown", b"# T\nbody").sections == [("", ""), ("T", "body")]
