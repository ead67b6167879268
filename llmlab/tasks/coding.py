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


def sample_replies(model, tokenizer, prompt: str | list[str], n: int, seed: int, max_new_tokens: int = 80,
                   temperature: float = 0.8, top_p: float = 0.95) -> list[str]:
    """n sampled chat replies to each prompt (one str or a list), generated as one left-padded batch by
    `tokens.generate_batch`; for a list, the replies of prompt i are items i*n .. i*n+n-1 (the sampler of
    scripts/data/ch09_make_candidates.py)."""
    import torch

    from llmlab import tokens

    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    torch.manual_seed(seed)
    return tokens.generate_batch(model, tokenizer, prompts, max_new_tokens, batch_size=len(prompts), do_sample=True,
                                 temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=n)
