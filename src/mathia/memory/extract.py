"""Turning an uploaded file into text sections: plain text, Markdown, or PDF (one section a page).

Every refusal is an `InvalidInput` naming the `file` field and the reason."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import PurePath

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from mathia.errors import InvalidInput
from mathia.memory.text import markdown_sections

log = logging.getLogger(__name__)

MARKDOWN = "text/markdown"
PLAIN = "text/plain"
PDF = "application/pdf"
_SUFFIXES = {".md": MARKDOWN, ".markdown": MARKDOWN, ".txt": PLAIN, ".text": PLAIN, ".pdf": PDF}
_MAX_PDF_PAGES = 500


@dataclass(frozen=True)
class Extracted:
    content_type: str
    sections: list[tuple[str, str]]


def kind_of(filename: str, declared: str | None, data: bytes) -> str:
    """The file's kind, from its bytes first (a PDF says so), then its name, then its declared type."""
    if data.startswith(b"%PDF-"):
        return PDF
    by_name = _SUFFIXES.get(PurePath(filename).suffix.lower())
    if by_name is not None:
        return by_name
    declared = (declared or "").split(";")[0].strip().lower()
    if declared in (MARKDOWN, PLAIN, PDF):
        return declared
    raise InvalidInput("file: unsupported type; upload plain text (.txt), Markdown (.md) or PDF (.pdf)")


def extract(filename: str, declared: str | None, data: bytes) -> Extracted:
    if not data.strip():
        raise InvalidInput("file: is empty")
    kind = kind_of(filename, declared, data)
    if kind == PDF:
        sections = _pdf_pages(data)
    else:
        text = _decode_text(data)
        sections = list(markdown_sections(text)) if kind == MARKDOWN else [("", text)]
    if not any(body.strip() for _, body in sections):
        raise InvalidInput("file: contains no text")
    return Extracted(content_type=kind, sections=sections)


def _decode_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("file: is not UTF-8 text (binary files other than PDF are not accepted)") from None
    # Valid UTF-8 can still be binary junk: text has almost no control characters besides whitespace.
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f")
    if "\x00" in text or controls > len(text) // 100:
        raise InvalidInput("file: looks binary, not text")
    return text


def _pdf_pages(data: bytes) -> list[tuple[str, str]]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InvalidInput("file: the PDF is encrypted")
        if len(reader.pages) > _MAX_PDF_PAGES:
            raise InvalidInput(f"file: the PDF has more than {_MAX_PDF_PAGES} pages")
        pages = [(f"page {number}", page.extract_text() or "") for number, page in enumerate(reader.pages, 1)]
    except InvalidInput:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pypdf reports broken files through many exception types; all mean "not a readable PDF".
        log.info("unreadable PDF upload: %r", exc)
        raise InvalidInput("file: is not a readable PDF") from None
    if not any(text.strip() for _, text in pages):
        raise InvalidInput("file: the PDF has no extractable text (scanned images are not supported)")
    return pages
