"""Synthetic data (self-instruct): few-shot prompts, sampled continuations, parsing and filtering."""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np

from llmlab import validate as V
from llmlab.data_engineering.minhash import near_duplicates
from llmlab.data_engineering.quality import QualityRules, quality_problem
from llmlab.evaluation.text import final_number

SELF_INSTRUCT_HEADER = "Here are questions with short answers. Write one more question and its short answer."


def self_instruct_prompt(examples: Sequence[dict]) -> str:
    """A few-shot prompt listing seed (instruction, response) rows as Q:/A: lines, ending with 'Q:' to continue."""
    V.non_empty("examples", examples)
    lines = [SELF_INSTRUCT_HEADER, ""]
    for e in examples:
        lines += [f"Q: {e['instruction']}", f"A: {e['response']}", ""]
    return "\n".join(lines) + "Q:"


def parse_synthetic(continuation: str) -> dict | None:
    """{'instruction', 'response'} from a continuation 'question\\nA: answer\\n...', or None when malformed."""
    V.text("continuation", continuation, allow_empty=True)
    match = re.match(r"\s*(.+?)\s*\n\s*A:\s*(.+?)\s*(?:\n|$)", continuation)
    if match is None:
        return None
    return {"instruction": match.group(1).strip(), "response": match.group(2).strip()}


def generate_synthetic(model, tokenizer, seeds: Sequence[dict], n: int, shots: int = 3, max_new_tokens: int = 40,
                       temperature: float = 0.8, top_p: float = 0.95, seed: int = 0) -> list[str]:
    """n sampled continuations of self-instruct prompts, each built from `shots` seed rows drawn at random.

    Plain-text prompts (no chat template): the model continues a list, as in Self-Instruct (Wang et al. 2023).
    """
    import torch

    from llmlab.tokens import generate_batch

    V.positive_int("n", n)
    V.integer("shots", shots, low=1, high=len(V.non_empty("seeds", seeds)))
    V.positive_int("max_new_tokens", max_new_tokens)
    V.number("temperature", temperature, low=0.0, low_open=True)
    V.probability("top_p", top_p, open_low=True)
    rng = np.random.default_rng(seed)
    prompts = [self_instruct_prompt([seeds[j] for j in rng.choice(len(seeds), shots, replace=False)])
               for _ in range(n)]
    torch.manual_seed(seed)
    return generate_batch(model, tokenizer, prompts, max_new_tokens, batch_size=n, chat=False, do_sample=True,
                          temperature=temperature, top_p=top_p)


_SUM = re.compile(r"(\d+)\s*(?:\+|plus|and)\s*(\d+)")


def verify_sum(row: dict) -> bool | None:
    """For an addition question, whether the response's last number is the sum; None when it is not one."""
    match = _SUM.search(row["instruction"].lower())
    last = final_number(row["response"])
    if match is None or last is None:
        return None
    return last == int(match.group(1)) + int(match.group(2))


def filter_synthetic(continuations: Sequence[str], existing: Sequence[str], near_threshold: float = 0.7,
                     rules: QualityRules = QualityRules()) -> tuple[list[dict], Counter]:
    """Keep parsed, good-quality generations that are not near duplicates of `existing` texts or of each other.

    Addition questions are also verified (`verify_sum`): a wrong sum is dropped as 'wrong_sum'.
    Returns (kept rows, Counter of why the others were dropped: 'unparsed', a quality rule, 'wrong_sum', 'near_dup').
    """
    reasons: Counter = Counter()
    parsed = []
    for c in V.non_empty("continuations", continuations):
        row = parse_synthetic(c)
        problem = "unparsed" if row is None else quality_problem(row["instruction"], row["response"], rules)
        if not problem and verify_sum(row) is False:
            problem = "wrong_sum"
        if problem:
            reasons[problem] += 1
        else:
            parsed.append(row)
    if not parsed:
        return [], reasons
    old = list(existing)
    texts = old + [f"{r['instruction']} {r['response']}" for r in parsed]
    drop = {j for i, j, _ in near_duplicates(texts, near_threshold) if j >= len(old)}
    reasons["near_dup"] += len(drop)
    return [r for i, r in enumerate(parsed) if len(old) + i not in drop], reasons
