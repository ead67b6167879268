"""Chapter 12's short-fact task: an instruction corpus with planted defects, a test set and preference pairs.

The data is written by the seeded generator `scripts/data/ch12_make_data.py` (capitals, sums, unit conversions,
opposites, plurals); see its docstring for what each file holds.
"""

from __future__ import annotations

import re
from importlib import resources

from llmlab import validate as V
from llmlab.tasks.jsonl import read_jsonl

PREFERENCE_SPLITS = ("train", "test")


def _read_jsonl(name: str) -> list[dict]:
    """The rows of one shipped llmlab/data/*.jsonl file."""
    path = resources.files("llmlab.data") / name
    return read_jsonl(path)


def load_corpus() -> list[dict]:
    """The instruction corpus: dicts with id, instruction, response and kind (the planted defect, or 'clean')."""
    return _read_jsonl("ch12_corpus.jsonl")


def load_test() -> list[dict]:
    """The held-out test rows: dicts with id, instruction and response."""
    return _read_jsonl("ch12_test.jsonl")


def load_preferences(split: str = "train") -> list[dict]:
    """Preference pairs of one split: dicts with prompt, chosen, rejected, gold, family, kind ('verbose'/'wrong')."""
    V.one_of("split", split, PREFERENCE_SPLITS)
    return _read_jsonl(f"ch12_prefs_{split}.jsonl")


def capitals() -> dict[str, str]:
    """Country -> capital, as the clean rows of the shipped corpus and test state them ("The capital of X is Y.")."""
    found = {}
    for row in load_corpus() + load_test():
        m = re.fullmatch(r"The capital of (.+) is (.+)\.", row["response"].strip())
        if m and row.get("kind", "clean") == "clean":
            found.setdefault(m.group(1), m.group(2))
    return found


def row_text(row: dict) -> str:
    """An instruction row as one text: instruction, a space, response."""
    if not isinstance(row, dict) or not {"instruction", "response"} <= row.keys():
        raise ValueError(f"row must be a dict with 'instruction' and 'response', got {row!r:.80}")
    return f"{row['instruction']} {row['response']}"
