"""The interface every generation task shares: load a split, the chat messages for an example, score a reply.

A chapter that evaluates a model on a task needs these three things and nothing task-specific, so one loop
(`evaluate`) scores any model on any task (as nanochat's tasks do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from llmlab import validate


@dataclass(frozen=True)
class Task:
    """A task: its name, its splits, and how to load a split, prompt for an example and score a reply (0 to 1)."""

    name: str
    splits: tuple[str, ...]
    loader: Callable[[str], list[dict]]
    prompter: Callable[[dict], list[dict]]
    scorer: Callable[[dict, str], float]

    def load(self, split: str) -> list[dict]:
        """The examples of one split (dicts), in a fixed order."""
        validate.one_of("split", split, self.splits)
        return self.loader(split)

    def messages(self, example: dict) -> list[dict]:
        """The chat messages that ask the model for this example's answer."""
        if not isinstance(example, dict):
            raise TypeError(f"example must be a dict from {self.name}.load(split), got {type(example).__name__}")
        return self.prompter(example)

    def score(self, example: dict, reply: str) -> float:
        """How right a reply is for this example: 1.0 right, 0.0 wrong (partial credit where the task gives it)."""
        if not isinstance(example, dict):
            raise TypeError(f"example must be a dict from {self.name}.load(split), got {type(example).__name__}")
        validate.text("reply", reply, allow_empty=True)
        return float(self.scorer(example, reply))


def evaluate(task: Task, examples: Sequence[dict], reply: Callable[[list[dict]], str]) -> list[float]:
    """The score of each example's reply, where reply(messages) -> str is any model (greedy `models.chat`, a RAG
    pipeline, an agent)."""
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task (llmlab.tasks.get(name)), got {type(task).__name__}")
    validate.non_empty("examples", examples)
    return [task.score(example, reply(task.messages(example))) for example in examples]
