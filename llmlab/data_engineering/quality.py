"""Quality filters: heuristic rules (English share, symbol share, repeated n-grams, length) over a row."""

from __future__ import annotations

from dataclasses import dataclass

from llmlab import validate as V
from llmlab.data_engineering.text import words

STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been being it
its this that these those what which who whom how when where why do does did not no yes you your i me my we our
they them their he she his her there here can could will would should may might must than then so too very
about into over under more most some any all each every one two make makes give name tell write""".split())


def english_share(text: str) -> float:
    """Share of the alphabetic words that are common English function words (0 when there are none)."""
    alpha = [w for w in words(text) if w.isalpha()]
    return sum(w in STOPWORDS for w in alpha) / len(alpha) if alpha else 0.0


def alnum_share(text: str) -> float:
    """Share of the non-space characters that are letters or digits (symbol noise scores low)."""
    chars = [c for c in V.text("text", text, allow_empty=True) if not c.isspace()]
    return sum(c.isalnum() for c in chars) / len(chars) if chars else 0.0


def duplicate_ngram_share(text: str, n: int = 3) -> float:
    """Share of the word n-grams that repeat an earlier n-gram of the same text (0 for under n+1 words)."""
    V.positive_int("n", n)
    w = words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the quality filter (defaults suit the chapter's short answers)."""

    min_words: int = 3
    max_words: int = 120
    min_english: float = 0.25
    min_alnum: float = 0.7
    max_repeated: float = 0.2


def quality_problem(instruction: str, response: str, rules: QualityRules = QualityRules()) -> str | None:
    """The first rule a row breaks ('too_short', 'too_long', 'symbols', 'not_english', 'repetitive') or None."""
    V.text("instruction", instruction, allow_empty=True)
    V.text("response", response, allow_empty=True)
    n = len(words(response))
    if n < rules.min_words:
        return "too_short"
    if n > rules.max_words:
        return "too_long"
    both = f"{instruction} {response}"
    if alnum_share(both) < rules.min_alnum:
        return "symbols"
    if english_share(both) < rules.min_english:
        return "not_english"
    if duplicate_ngram_share(response) > rules.max_repeated:
        return "repetitive"
    return None
