"""Chapter 09's human-labelled judging set (written and labelled for llmlab by one author): questions with two
answers, a 1-5 score for each and which one is better."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmlab.tasks.jsonl import read_jsonl

LABELS = Path(__file__).resolve().parent.parent / "data" / "ch09_judge_labels.jsonl"


@dataclass(frozen=True)
class LabelledPair:
    """A question, answers shown as A and B, the human scores of each and the human preference ('A' or 'B')."""

    id: int
    question: str
    a: str
    b: str
    human_score_a: int
    human_score_b: int
    human_preference: str


def load_labels(path: Path = LABELS) -> list[LabelledPair]:
    """The shipped human-labelled pairs, in file order."""
    return [LabelledPair(**row) for row in read_jsonl(path)]
