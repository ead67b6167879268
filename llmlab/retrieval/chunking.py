"""Chunking: split documents into passages by fixed word windows with overlap, by sentences or by paragraphs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from llmlab import validate

METHODS = ("fixed", "sentence", "paragraph", "document")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    """One passage: the document it came from, its position in that document, its text."""

    doc_id: str
    index: int
    text: str


def chunk_fixed(text: str, size: int, overlap: int = 0) -> list[str]:
    """Windows of `size` words, each starting `size - overlap` words after the previous one.

    >>> chunk_fixed("a b c d e f", size=4, overlap=2)
    ['a b c d', 'c d e f']
    """
    validate.text("text", text, allow_empty=True)
    validate.positive_int("size", size)
    validate.integer("overlap", overlap, 0, size - 1)
    words = text.split()
    step = size - overlap
    out = []
    for start in range(0, max(len(words), 1), step):
        out.append(" ".join(words[start:start + size]))
        if start + size >= len(words):
            break
    return [c for c in out if c]


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (a split after . ! ? followed by a capital or digit).

    >>> split_sentences("One. Two? Three!")
    ['One.', 'Two?', 'Three!']
    """
    validate.text("text", text, allow_empty=True)
    return [s.strip() for para in text.split("\n") for s in _SENTENCE_END.split(para) if s.strip()]


def chunk_sentences(text: str, max_words: int) -> list[str]:
    """Whole sentences packed greedily into chunks of at most max_words words (a longer sentence stays whole)."""
    validate.positive_int("max_words", max_words)
    out: list[list[str]] = []
    count = 0
    for sentence in split_sentences(text):
        n = len(sentence.split())
        if out and count + n <= max_words:
            out[-1].append(sentence)
            count += n
        else:
            out.append([sentence])
            count = n
    return [" ".join(c) for c in out]


def chunk_paragraphs(text: str) -> list[str]:
    """Paragraphs: blocks separated by a blank line."""
    validate.text("text", text, allow_empty=True)
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def chunk_documents(docs: Sequence[dict], method: str = "sentence", size: int = 60, overlap: int = 10,
                    with_title: bool = True) -> list[Chunk]:
    """Chunks of every document ({'id', 'text'[, 'title']}); with_title prefixes each chunk with its title."""
    validate.non_empty("docs", docs)
    validate.one_of("method", method, METHODS)
    chunks = []
    for doc in docs:
        if not isinstance(doc, dict) or "id" not in doc or "text" not in doc:
            raise ValueError(f"docs must hold dicts with 'id' and 'text', got {doc!r:.80}")
        text = doc["text"]
        if method == "fixed":
            pieces = chunk_fixed(text, size, overlap)
        elif method == "sentence":
            pieces = chunk_sentences(text, size)
        elif method == "paragraph":
            pieces = chunk_paragraphs(text)
        else:
            pieces = [text]
        title = doc.get("title", "")
        for i, piece in enumerate(pieces):
            chunks.append(Chunk(doc["id"], i, f"{title}: {piece}" if with_title and title else piece))
    return chunks
