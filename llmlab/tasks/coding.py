"""Chapter 09's small coding problems (written for llmlab): a signature with a docstring, and assert-based tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmlab.tasks.jsonl import read_jsonl

DATA = Path(__file__).resolve().parent.parent / "data"
PROBLEMS = DATA / "ch09_coding.jsonl"
CANDIDATES = DATA / "ch09_candidates.jsonl"
INSTRUCTION = ("Complete this Python function. Reply with the whole function in one ```python code block and "
               "nothing else.\n\n")


@dataclass(frozen=True)
class Problem:
    """One problem: a function signature and docstring to complete, and the tests its completion must pass."""

    id: str
    entry_point: str
    prompt: str
    tests: str
    solution: str  # a reference body (indented), so the tests are known to be passable


def load_problems(path: Path = PROBLEMS) -> list[Problem]:
    """The shipped problems, in file order."""
    return [Problem(**row) for row in read_jsonl(path)]


def chat_prompt(problem: Problem) -> str:
    """The user message that asks the model for a completion."""
    return INSTRUCTION + "```python\n" + problem.prompt + "```"


def load_candidates(path: Path = CANDIDATES) -> dict:
    """Shipped model candidates: {'settings': {...}, 'candidates': {problem id: [code, ...]}}."""
    rows = read_jsonl(path)
    return {"settings": rows[0]["settings"], "candidates": {r["id"]: r["candidates"] for r in rows[1:]}}
