"""Chapter 06's second DSPy task: two- and three-step arithmetic word problems from a seeded generator.

Each template writes a question, its integer answer and a worked reasoning ("4 bags of 6 is 4 * 6 = 24. ...").
Splits: train, dev and test come from TEMPLATES (a question's hash picks its split, so they never overlap);
"unseen" comes from UNSEEN_TEMPLATES, problems that no other split is phrased or structured like. The worked
reasoning makes demos with reasoning possible, so a ChainOfThought program never gets demos whose reasoning DSPy
would have to fill with a placeholder.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable

from llmlab import validate

SPLITS = ("train", "dev", "test", "unseen")
INSTRUCTION = "Solve the word problem step by step. The answer is a whole number."


def _bags(r: random.Random) -> tuple[str, int, str]:
    a, b, c = r.randint(2, 20), r.randint(2, 9), r.randint(2, 9)
    return (f"Mia has {a} apples. She buys {b} bags with {c} apples in each. How many apples does she have now?",
            a + b * c, f"{b} bags of {c} is {b} * {c} = {b * c}. {a} + {b * c} = {a + b * c}.")


def _bus(r: random.Random) -> tuple[str, int, str]:
    a, b, c = r.randint(20, 60), r.randint(2, 15), r.randint(2, 15)
    return (f"A bus has {a} passengers. At the first stop {b} get off and {c} get on. How many passengers are on the "
            f"bus now?", a - b + c, f"{a} - {b} = {a - b}. {a - b} + {c} = {a - b + c}.")


def _trays(r: random.Random) -> tuple[str, int, str]:
    a, b = r.randint(2, 9), r.randint(6, 12)
    c = r.randint(1, a * b - 1)
    return (f"A baker makes {a} trays of {b} muffins and sells {c} muffins. How many muffins are left?", a * b - c,
            f"{a} trays of {b} is {a} * {b} = {a * b}. {a * b} - {c} = {a * b - c}.")


def _wages(r: random.Random) -> tuple[str, int, str]:
    a, b = r.randint(10, 40), r.randint(2, 7)
    c = r.randint(5, a * b - 1)
    return (f"Tom earns {a} dollars a day for {b} days and then spends {c} dollars. How many dollars does he have "
            f"left?", a * b - c, f"{a} * {b} = {a * b}. {a * b} - {c} = {a * b - c}.")


def _pages(r: random.Random) -> tuple[str, int, str]:
    a, b = r.randint(5, 30), r.randint(5, 30)
    return (f"Sam reads {a} pages on Monday, twice as many on Tuesday and {b} pages on Wednesday. How many pages does "
            f"he read in the three days?", a + 2 * a + b,
            f"Tuesday is 2 * {a} = {2 * a}. {a} + {2 * a} + {b} = {3 * a + b}.")


def _marbles(r: random.Random) -> tuple[str, int, str]:
    a, b, c = r.randint(2, 12), r.randint(2, 12), r.randint(2, 6)
    return (f"Each of {c} jars holds {a} red and {b} blue marbles. How many marbles are there in all the jars?",
            (a + b) * c, f"Each jar has {a} + {b} = {a + b}. {c} jars: {a + b} * {c} = {(a + b) * c}.")


def _tickets(r: random.Random) -> tuple[str, int, str]:
    a, b, c = 2 * r.randint(3, 15), r.randint(1, 4), r.randint(1, 5)
    half = a // 2
    return (f"An adult ticket costs {a} dollars and a child ticket costs half as much. What do {b} adult and {c} "
            f"child tickets cost together, in dollars?", a * b + half * c,
            f"A child ticket is {a} / 2 = {half}. {b} * {a} = {a * b}. {c} * {half} = {half * c}. "
            f"{a * b} + {half * c} = {a * b + half * c}.")


def _shelves(r: random.Random) -> tuple[str, int, str]:
    a, b, c = r.randint(3, 9), r.randint(10, 30), r.randint(5, 40)
    return (f"After giving away {c} books, a library still has {a} full shelves of {b} books. How many books did it "
            f"have before?", a * b + c, f"{a} * {b} = {a * b}. {a * b} + {c} = {a * b + c}.")


TEMPLATES: tuple[Callable[[random.Random], tuple[str, int, str]], ...] = (_bags, _bus, _trays, _wages, _pages)
UNSEEN_TEMPLATES: tuple[Callable[[random.Random], tuple[str, int, str]], ...] = (_marbles, _tickets, _shelves)


def _split_of(question: str) -> str:
    """train, dev or test, fixed by a hash of the question text: a question belongs to one split only."""
    return ("train", "dev", "test")[int(hashlib.sha256(question.encode("utf-8")).hexdigest(), 16) % 3]


def make_problems(split: str, n: int) -> list[dict]:
    """n distinct problems of a split, each {'question', 'answer' (int), 'reasoning'}; the same call, the same list.

    One seeded stream per template set; a problem goes to the split its question hashes to, so no two splits share
    a question. Templates take turns, so every split holds all of its templates.
    """
    validate.one_of("split", split, SPLITS)
    validate.positive_int("n", n)
    r = random.Random(0 if split != "unseen" else 1)
    templates = UNSEEN_TEMPLATES if split == "unseen" else TEMPLATES
    rows, seen = [], set()
    for i in range(1000 * n):
        question, answer, reasoning = templates[len(rows) % len(templates)](r)
        if question in seen or (split != "unseen" and _split_of(question) != split):
            continue
        seen.add(question)
        rows.append({"question": question, "answer": answer, "reasoning": reasoning})
        if len(rows) == n:
            return rows
    raise ValueError(f"n must be at most the number of distinct {split} problems the templates make, got {n}")


def as_examples(rows: list[dict], with_reasoning: bool = False) -> list:
    """dspy.Example objects (input: question; outputs: answer, and reasoning when asked)."""
    import dspy  # imported here: generating problems does not need DSPy

    validate.non_empty("rows", rows)
    keys = ("question", "answer", "reasoning") if with_reasoning else ("question", "answer")
    return [dspy.Example(**{k: row[k] for k in keys}).with_inputs("question") for row in rows]


def answer_metric(example, prediction, trace=None) -> float:
    """DSPy metric: 1.0 when the predicted answer is the gold integer (a float equal to it counts), else 0.0."""
    value = getattr(prediction, "answer", None)
    try:
        return float(float(value) == float(example.answer))
    except (TypeError, ValueError):
        return 0.0


def signature():
    """The DSPy signature question -> answer: int, with the task's instruction."""
    import dspy

    class Solve(dspy.Signature):
        __doc__ = INSTRUCTION

        question: str = dspy.InputField()
        answer: int = dspy.OutputField()

    return Solve


def predict_program():
    """dspy.Predict over the signature: the answer with no reasoning."""
    import dspy

    return dspy.Predict(signature())


def cot_program():
    """dspy.ChainOfThought over the signature: a reasoning field, then the answer (the module an optimizer improves)."""
    import dspy

    return dspy.ChainOfThought(signature())
