"""Text normalization and exact duplicates: the normalized form two copies of a text share."""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

from llmlab import validate as V

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def normalize(text: str) -> str:
    """Lower-case, keep letters/digits/apostrophes, collapse whitespace: 'Hi,  THERE!' -> 'hi there'."""
    V.text("text", text, allow_empty=True)
    return " ".join(_WORD.findall(text.lower()))


def words(text: str) -> list[str]:
    """The normalized words of a text."""
    return normalize(text).split()


def content_hash(text: str) -> str:
    """SHA-1 hex digest of the normalized text: equal for texts that differ only in case/spacing/punctuation."""
    return hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()


def exact_duplicates(texts: Sequence[str]) -> list[int]:
    """Indices of texts whose normalized form already appeared earlier (the first copy is kept).

    >>> exact_duplicates(["Hi there!", "hi,  THERE", "bye"])
    [1]
    """
    V.non_empty("texts", texts)
    seen: set[str] = set()
    dups = []
    for i, text in enumerate(texts):
        h = content_hash(text)
        if h in seen:
            dups.append(i)
        seen.add(h)
    return dups
