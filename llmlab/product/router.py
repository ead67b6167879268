"""Intent routing: chapter 06's four support teams plus "out_of_scope", by a kNN vote over MiniLM embeddings.

In-scope messages go to the model; out-of-scope ones get a canned refusal and cost no model call (AI Engineering
ch. 10, "router"). The router is chapter 06's `prompting.knn_vote` with one more label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from llmlab import validate
from llmlab.prompting import knn_vote
from llmlab.tasks.jsonl import read_jsonl
from llmlab.tasks.tickets import load_tickets

OUT_OF_SCOPE = "out_of_scope"
REFUSAL = "I can only help with orders, payments, deliveries, accounts and our apps."
DATA = Path(__file__).resolve().parent.parent / "data" / "ch13_out_of_scope.jsonl"


def out_of_scope(split: str = "train") -> list[dict]:
    """Out-of-scope messages of one split ('train' or 'test'), each {'text', 'label': 'out_of_scope'}."""
    validate.one_of("split", split, ("train", "test"))
    return [{"text": r["text"], "label": OUT_OF_SCOPE} for r in read_jsonl(DATA) if r["split"] == split]


def routing_data(split: str = "train") -> list[dict]:
    """Chapter 06's tickets of a split (train or test) and the out-of-scope messages of the same split."""
    return load_tickets(split) + out_of_scope(split)


def route(train_vectors: np.ndarray, train_labels: Sequence[str], query_vectors: np.ndarray, k: int = 5) -> list:
    """Each query's label by a majority vote of its k nearest training messages."""
    return knn_vote(train_vectors, list(train_labels), query_vectors, k)


def routing_report(predicted: Sequence[str], gold: Sequence[str], model_call_cost: float = 1.0,
                   refusal_cost: float = 0.0) -> dict[str, float]:
    """Accuracy, out-of-scope recall, share of in-scope requests wrongly refused, and the share of cost saved
    against sending every request to the model."""
    validate.non_empty("predicted", predicted)
    validate.same_length(("predicted", "gold"), predicted, gold)
    p, g = np.asarray(predicted), np.asarray(gold)
    oos, pred_oos = g == OUT_OF_SCOPE, p == OUT_OF_SCOPE
    cost = np.where(pred_oos, refusal_cost, model_call_cost).sum()
    return {"accuracy": float((p == g).mean()),
            "oos_recall": float(pred_oos[oos].mean()) if oos.any() else float("nan"),
            "in_scope_refused": float(pred_oos[~oos].mean()) if (~oos).any() else float("nan"),
            "cost_saved": float(1 - cost / (model_call_cost * len(p)))}
