"""PII masking with a reverse map: emails, phone numbers, order ids and listed names become placeholders.

The model only ever sees the placeholders; the reverse map restores the originals in its reply (AI Engineering
ch. 10, "protect sensitive information" among the input guardrails).
"""

from __future__ import annotations

import re
from typing import Sequence

from llmlab import validate

# Applied in this order: an email may contain a phone-like digit run, so emails go first.
PATTERNS: dict[str, str] = {
    "EMAIL": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    "ORDER": r"\b[A-Z]-\d{4}\b",  # the kit's order ids, like chapter 11's Q-1040
    "PHONE": r"\+?\(?\d[\d ()-]{7,}\d",
}
KINDS = (*PATTERNS, "NAME")


def names_pattern(names: Sequence[str]) -> str | None:
    """A regex matching any listed name as whole words, longest name first (None for no names)."""
    for i, name in enumerate(names):
        validate.text(f"names[{i}]", name)
    if not names:
        return None
    ordered = sorted(set(names), key=len, reverse=True)
    return r"\b(?:" + "|".join(re.escape(n) for n in ordered) + r")\b"


def mask_pii(text: str, names: Sequence[str] = ()) -> tuple[str, dict[str, str]]:
    """(masked text, reverse map placeholder -> original): each distinct value gets <KIND_n>, n from 1 per kind."""
    validate.text("text", text, allow_empty=True)
    mapping: dict[str, str] = {}
    patterns = dict(PATTERNS)
    named = names_pattern(list(names))
    if named:
        patterns["NAME"] = named
    for kind, pattern in patterns.items():
        seen: dict[str, str] = {}

        def place(match: re.Match, kind=kind, seen=seen) -> str:
            value = match.group(0)
            if value not in seen:
                seen[value] = f"<{kind}_{len(seen) + 1}>"
                mapping[seen[value]] = value
            return seen[value]

        text = re.sub(pattern, place, text)
    return text, mapping


def unmask(text: str, mapping: dict[str, str]) -> str:
    """The text with every placeholder of the reverse map replaced by its original value."""
    validate.text("text", text, allow_empty=True)
    if not isinstance(mapping, dict):
        raise TypeError(f"mapping must be a dict, got {type(mapping).__name__}")
    if not mapping:
        return text
    return re.sub("|".join(re.escape(p) for p in mapping), lambda m: mapping[m.group(0)], text)


def leaks(model_input: str, secrets: Sequence[str]) -> list[str]:
    """The secrets that still appear in what the model is sent (empty when masking worked)."""
    validate.text("model_input", model_input, allow_empty=True)
    return [s for s in secrets if s and s in model_input]


def detection_scores(cases: Sequence[dict], names: Sequence[str] = ()) -> dict[str, float]:
    """Precision and recall of mask_pii on planted cases ({'text', 'pii': [values]}), counted over values."""
    validate.non_empty("cases", cases)
    found = correct = planted = 0
    for case in cases:
        _, mapping = mask_pii(case["text"], names)
        values, gold = set(mapping.values()), set(case["pii"])
        found, correct, planted = found + len(values), correct + len(values & gold), planted + len(gold)
    return {"precision": correct / found if found else 1.0, "recall": correct / planted if planted else 1.0,
            "found": found, "planted": planted, "correct": correct}


def missed(cases: Sequence[dict], names: Sequence[str] = ()) -> list[tuple[str, list[str], list[str]]]:
    """Per case where masking is imperfect: (text, values missed, values masked that were not PII)."""
    out = []
    for case in cases:
        values, gold = set(mask_pii(case["text"], names)[1].values()), set(case["pii"])
        if values != gold:
            out.append((case["text"], sorted(gold - values), sorted(values - gold)))
    return out
