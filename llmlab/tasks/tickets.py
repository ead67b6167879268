"""Chapter 06's task: route a customer-support message to one of four teams (billing, shipping, account, technical).

Data: llmlab/data/ch06_tickets.jsonl, written by scripts/data/ch06_make_tickets.py (400 messages; 100 train,
100 dev, 200 test, sharing templates; plus 100 "unseen" messages from templates no other split uses). Optimizers may
use train and dev; test and unseen are for final numbers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from llmlab import validate
from llmlab.evaluation.text import contains_match
from llmlab.tasks.jsonl import read_jsonl

LABELS = ("billing", "shipping", "account", "technical")
SPLITS = ("train", "dev", "test")
UNSEEN = "unseen"  # new phrasings: templates that no train/dev/test message comes from
DATA = Path(__file__).resolve().parent.parent / "data" / "ch06_tickets.jsonl"
INSTRUCTION = ("Route the customer message to the team that handles it: billing (charges, payments, invoices, "
               "refunds of money), shipping (delivery, tracking, couriers, damaged parcels), account (login, "
               "password, profile, personal data) or technical (apps, websites and devices that crash or fail).")


def load_tickets(split: str = "train") -> list[dict]:
    """The examples of one split, each {'text': str, 'label': str}, in file order."""
    validate.one_of("split", split, SPLITS + (UNSEEN,))
    rows = read_jsonl(DATA)
    return [{"text": r["text"], "label": r["label"]} for r in rows if r["split"] == split]


def normalize(label) -> str:
    """A label compared loosely: str, stripped, lower-case ('' for None)."""
    return "" if label is None else str(label).strip().lower()


def team_metric(example, prediction, trace=None) -> float:
    """DSPy metric: 1.0 when the predicted team equals the gold team (case and spaces ignored), else 0.0."""
    return float(normalize(getattr(prediction, "team", None)) == normalize(example.team))


def reply_team(reply: str) -> str | None:
    """The one team a free-text reply names (whole words, any case), or None when it names none or several."""
    validate.text("reply", reply, allow_empty=True)
    named = [team for team in LABELS if contains_match(reply, team)]
    return named[0] if len(named) == 1 else None


def route_program():
    """The un-optimized DSPy program: dspy.Predict over the signature message -> team (a Literal of LABELS)."""
    import dspy  # imported here: loading the task data does not need DSPy

    class Route(dspy.Signature):
        """Route the customer message to the team that handles it."""

        message: str = dspy.InputField()
        team: Literal["billing", "shipping", "account", "technical"] = dspy.OutputField()

    return dspy.Predict(Route)
