"""Chapter 08's probing task: 96 short sentences (32 in each of en/fr/es) with sentiment, topic and language labels.

Written for the project: 4 topics x 2 sentiments x 4 sentences, each in English, French and Spanish; the
three translations of a sentence share a `group` id, and the train/test split keeps a group together.
"""

from __future__ import annotations

import random
from importlib import resources

from llmlab import validate
from llmlab.tasks.jsonl import read_jsonl

TASKS = ("sentiment", "topic", "language")
DATA_FILE = "ch08_sentences.jsonl"


def load_sentences() -> list[dict]:
    """All sentences as dicts with id, group, text, sentiment, topic, language."""
    return read_jsonl(resources.files("llmlab.data").joinpath(DATA_FILE))


def split_by_group(rows: list[dict], test_fraction: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """Train and test row indices; all translations of one sentence (one group) land on the same side."""
    validate.non_empty("rows", rows)
    validate.number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    groups = sorted({r["group"] for r in rows})
    random.Random(seed).shuffle(groups)
    test_groups = set(groups[:max(1, round(len(groups) * test_fraction))])
    train = [i for i, r in enumerate(rows) if r["group"] not in test_groups]
    test = [i for i, r in enumerate(rows) if r["group"] in test_groups]
    return train, test


def label_ids(rows: list[dict], task: str) -> tuple[list[int], list[str]]:
    """Integer labels for one task and the class names they index (sorted)."""
    validate.one_of("task", task, TASKS)
    classes = sorted({r[task] for r in rows})
    return [classes.index(r[task]) for r in rows], classes
