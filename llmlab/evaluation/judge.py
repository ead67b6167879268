"""An LLM as judge: 1-5 scores and A/B preferences, parsed (or recorded as unparsable), position bias, Cohen's kappa
(plain and weighted)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Hashable, Sequence

from llmlab import validate as V

SCORE_PROMPT = ("You are grading an answer to a question. Give a score from 1 (wrong or useless) to 5 (correct and "
                "complete). Reply with the score only.\n\nQuestion: {question}\nAnswer: {answer}\n\nScore (1-5):")
PAIR_PROMPT = ("Which answer to the question is better? Reply with the letter A or B only.\n\nQuestion: {question}\n"
               "Answer A: {a}\nAnswer B: {b}\n\nBetter answer (A or B):")
SCORES = ("1", "2", "3", "4", "5")
SIDES = ("A", "B")


@dataclass(frozen=True)
class Verdict:
    """A judge's raw reply and what it parsed to (None when the reply could not be parsed)."""

    reply: str
    value: str | None

    @property
    def parsed(self) -> bool:
        """Whether the reply gave a usable verdict."""
        return self.value is not None


def parse_score(reply: str) -> str | None:
    """The first standalone digit 1-5 in a reply ('4', 'Score: 4/5'), else None (e.g. 'great answer', '10').

    >>> parse_score("Score: 4/5"), parse_score("no idea")
    ('4', None)
    """
    V.text("reply", reply, allow_empty=True)
    match = re.search(r"(?<![\d.])([1-5])(?!\d|\.\d)", reply)
    return match.group(1) if match else None


def parse_preference(reply: str) -> str | None:
    """'A' or 'B' from a reply ('B', 'Answer A', 'A.'); None when it names neither or both."""
    V.text("reply", reply, allow_empty=True)
    found = set(re.findall(r"\b([AB])\b", reply))
    return found.pop() if len(found) == 1 else None


def _check_judge_args(question: str, **answers: str) -> None:
    """Question and answers must be non-empty str."""
    V.text("question", question)
    for name, answer in answers.items():
        V.text(name, answer)


def score_prompt(question: str, answer: str) -> str:
    """The 1-5 grading prompt for one answer."""
    _check_judge_args(question, answer=answer)
    return SCORE_PROMPT.format(question=question, answer=answer)


def pair_prompt(question: str, a: str, b: str) -> str:
    """The A/B preference prompt, with `a` shown first."""
    _check_judge_args(question, a=a, b=b)
    return PAIR_PROMPT.format(question=question, a=a, b=b)


def judge_score(model, tokenizer, question: str, answer: str, max_new_tokens: int = 8) -> Verdict:
    """Free-form judging: the model writes a reply (greedy) and `parse_score` reads it; may be unparsable."""
    from llmlab import models

    reply = models.chat(model, tokenizer, score_prompt(question, answer), max_new_tokens=max_new_tokens)
    return Verdict(reply, parse_score(reply))


def judge_pair(model, tokenizer, question: str, a: str, b: str, max_new_tokens: int = 8) -> Verdict:
    """Free-form A/B judging: the model writes a reply (greedy) and `parse_preference` reads it; may be unparsable."""
    from llmlab import models

    reply = models.chat(model, tokenizer, pair_prompt(question, a, b), max_new_tokens=max_new_tokens)
    return Verdict(reply, parse_preference(reply))


def _read_off(model, tokenizer, prompt: str, options: Sequence[str]) -> tuple[str, dict[str, float]]:
    """The option whose first token is most likely next after the chat prompt, and every option's probability."""
    from llmlab import tokens

    probs = tokens.option_probs(model, tokenizer, prompt, list(options), chat=True)
    return max(probs, key=probs.get), probs


def judge_score_logprob(model, tokenizer, question: str, answer: str) -> tuple[str, dict[str, float]]:
    """Constrained judging: the most likely of '1'..'5' as the next token (always parses), and the five
    probabilities."""
    return _read_off(model, tokenizer, score_prompt(question, answer), SCORES)


def judge_pair_logprob(model, tokenizer, question: str, a: str, b: str) -> tuple[str, dict[str, float]]:
    """Constrained A/B judging: the more likely of 'A' and 'B' as the next token, and both probabilities."""
    return _read_off(model, tokenizer, pair_prompt(question, a, b), SIDES)


def unparsable_count(verdicts: Sequence[Verdict]) -> int:
    """How many verdicts parsed to nothing."""
    return sum(not v.parsed for v in verdicts)


@dataclass(frozen=True)
class PositionBias:
    """A/B verdicts on the same pairs in both orders: how often the judge agrees with itself and picks slot A."""

    pairs: int
    consistent: int
    first_slot_share: float
    unparsable: int

    @property
    def consistency(self) -> float:
        """Share of pairs with the same winner in both orders (unparsable counts as inconsistent)."""
        return self.consistent / self.pairs


def position_bias(original: Sequence[str | None], swapped: Sequence[str | None]) -> PositionBias:
    """Compare verdicts ('A', 'B' or None) on pairs shown as (x, y) and then as (y, x).

    Consistent: original 'A' with swapped 'B' (x both times) or original 'B' with swapped 'A'. An unbiased judge
    picks slot A half the time; first_slot_share is the share of parsed verdicts that chose slot A.
    """
    V.non_empty("original", original)
    V.same_length(("original", "swapped"), original, swapped)
    for name, items in (("original", original), ("swapped", swapped)):
        bad = [v for v in items if v not in (*SIDES, None)]
        if bad:
            raise ValueError(f"{name} verdicts must be 'A', 'B' or None, got {bad[0]!r}")
    consistent = sum(o is not None and s is not None and o != s for o, s in zip(original, swapped))
    parsed = [v for v in (*original, *swapped) if v is not None]
    share = sum(v == "A" for v in parsed) / len(parsed) if parsed else float("nan")
    unparsable = sum(v is None for v in (*original, *swapped))
    return PositionBias(len(original), consistent, share, unparsable)


def cohens_kappa(rater_a: Sequence[Hashable], rater_b: Sequence[Hashable]) -> float:
    """Cohen's kappa: agreement beyond chance, (p_observed - p_chance) / (1 - p_chance); NaN when p_chance is 1.

    >>> cohens_kappa([1, 1, 0, 0], [1, 1, 0, 0]), cohens_kappa([1, 0, 1, 0], [1, 1, 0, 0])
    (1.0, 0.0)
    """
    V.non_empty("rater_a", rater_a)
    V.same_length(("rater_a", "rater_b"), rater_a, rater_b)
    n = len(rater_a)
    observed = sum(a == b for a, b in zip(rater_a, rater_b)) / n
    count_a, count_b = Counter(rater_a), Counter(rater_b)
    chance = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if chance == 1.0:
        return float("nan")
    return (observed - chance) / (1.0 - chance)


def weighted_kappa(rater_a: Sequence[int], rater_b: Sequence[int], labels: Sequence[int] = (1, 2, 3, 4, 5),
                   weights: str = "quadratic") -> float:
    """Weighted Cohen's kappa for ordinal labels: 1 - sum(w * observed) / sum(w * chance); NaN when chance is 0.

    w is |i - j| ("linear") or (i - j)**2 ("quadratic") for the label ranks i, j: a 4 against a 5 costs less than a
    1 against a 5, which plain kappa counts the same."""
    V.non_empty("rater_a", rater_a)
    V.same_length(("rater_a", "rater_b"), rater_a, rater_b)
    V.one_of("weights", weights, ("linear", "quadratic"))
    rank = {label: i for i, label in enumerate(V.non_empty("labels", labels))}
    for name, ratings in (("rater_a", rater_a), ("rater_b", rater_b)):
        unknown = [r for r in ratings if r not in rank]
        if unknown:
            raise ValueError(f"{name} must only hold labels from {list(labels)}, got {unknown[0]!r}")
    n, power = len(rater_a), 1 if weights == "linear" else 2
    count_a, count_b = Counter(rater_a), Counter(rater_b)
    observed = sum(abs(rank[a] - rank[b]) ** power for a, b in zip(rater_a, rater_b)) / n
    chance = sum(count_a[a] * count_b[b] * abs(rank[a] - rank[b]) ** power for a in count_a for b in count_b) / (n * n)
    if chance == 0:
        return float("nan")
    return 1.0 - observed / chance


@dataclass(frozen=True)
class JudgeRun:
    """A judge's A/B verdicts on labelled pairs in both orders, and how they compare with the human labels."""

    original: list[str | None]
    swapped: list[str | None]
    human: list[str]

    @property
    def bias(self) -> PositionBias:
        """Position bias from the two orders."""
        return position_bias(self.original, self.swapped)

    @property
    def kappa(self) -> float:
        """Cohen's kappa of the judge's original-order verdict (None counts as its own label) vs the humans."""
        return cohens_kappa(["unparsable" if v is None else v for v in self.original], self.human)

    @property
    def agreement(self) -> float:
        """Share of pairs where the original-order verdict matches the human preference."""
        return sum(v == h for v, h in zip(self.original, self.human)) / len(self.human)


def run_pair_judge(judge, items: Sequence) -> JudgeRun:
    """Ask `judge(question, a, b) -> 'A' | 'B' | None` about each labelled pair as shown and with answers swapped.

    items need .question, .a, .b and .human_preference (see llmlab.tasks.judging)."""
    if not callable(judge):
        raise TypeError(f"judge must be a function (question, a, b) -> 'A', 'B' or None, got {type(judge).__name__}")
    V.non_empty("items", items)
    original = [judge(it.question, it.a, it.b) for it in items]
    swapped = [judge(it.question, it.b, it.a) for it in items]
    return JudgeRun(original, swapped, [it.human_preference for it in items])
