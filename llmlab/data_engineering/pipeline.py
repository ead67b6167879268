"""The cleaning pipeline, step by step: exact dedup, near dedup, quality filter, decontamination."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from llmlab import validate as V
from llmlab.data_engineering.decontamination import train_rows_overlapping
from llmlab.data_engineering.minhash import drop_near_duplicates
from llmlab.data_engineering.quality import QualityRules, quality_problem
from llmlab.data_engineering.text import exact_duplicates


@dataclass(frozen=True)
class Step:
    """One cleaning step: rows kept after it, and what it removed (by planted kind) with its reasons."""

    name: str
    kept: list[dict]
    removed: Counter


def clean_corpus(rows: Sequence[dict], test_texts: Sequence[str], near_threshold: float = 0.7,
                 rules: QualityRules = QualityRules(), n: int = 8, contamination: float = 0.5) -> list[Step]:
    """Run exact dedup -> near dedup -> quality filter -> decontamination; each Step keeps the surviving rows.

    Rows are dicts with 'instruction' and 'response' (and optionally 'kind', only used to label what was removed).
    """
    def text(r: dict) -> str:
        return f"{r['instruction']} {r['response']}"

    def step(name: str, before: list[dict], drop: Iterable[int]) -> Step:
        gone = set(drop)
        removed = Counter(before[i].get("kind", "?") for i in gone)
        return Step(name, [r for i, r in enumerate(before) if i not in gone], removed)

    rows = list(V.non_empty("rows", rows))
    steps = [Step("raw", rows, Counter())]
    steps.append(step("exact dedup", rows, exact_duplicates([text(r) for r in rows])))
    cur = steps[-1].kept
    steps.append(step("near dedup", cur, drop_near_duplicates([text(r) for r in cur], near_threshold)))
    cur = steps[-1].kept
    steps.append(step("quality filter", cur, [i for i, r in enumerate(cur)
                                              if quality_problem(r["instruction"], r["response"], rules)]))
    cur = steps[-1].kept
    steps.append(step("decontaminate", cur, train_rows_overlapping([text(r) for r in cur], test_texts, n,
                                                                   contamination)))
    return steps
