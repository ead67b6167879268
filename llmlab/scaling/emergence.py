"""The "emergence" of an ability as a metric artefact: exact match of a k-byte continuation vs per-byte log-prob."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch

from llmlab import attention, validate
from llmlab.scaling import tiny


class ContinuationScore(NamedTuple):
    """Exact match of the next k bytes for each k (greedy, all k right), byte accuracy and mean log-prob per byte."""

    exact_match: dict[int, float]
    byte_accuracy: float
    byte_logprob: float


def exact_runs(hit: torch.Tensor, k: int) -> torch.Tensor:
    """(..., L - k + 1) booleans: whether the k predictions starting at each position are all right."""
    validate.tensor("hit", hit, dims=(1, 2))
    validate.integer("k", k, low=1, high=hit.shape[-1])
    return hit.unfold(-1, k, 1).all(dim=-1)


@torch.no_grad()
def score_continuations(w: attention.LlamaWeights, tokens: torch.Tensor, ks: Sequence[int] = (1, 4, 8, 16),
                        seq: int = 64, windows: int = 64, warmup: int = 16) -> ContinuationScore:
    """Score a model on evenly spaced windows of a held-out byte stream, skipping each window's first `warmup` bytes.

    Greedy decoding reproduces the next k bytes exactly when the argmax is right at each of the k positions under
    teacher forcing, so one forward pass gives every k.
    """
    validate.tensor("tokens", tokens, dims=1)
    validate.integer("warmup", warmup, low=0, high=seq - 1)
    validate.non_empty("ks", ks)
    for k in ks:
        validate.integer("ks item", k, low=1, high=seq - warmup)
    if len(tokens) <= seq + 1:
        raise ValueError(f"tokens must hold more than seq + 1 = {seq + 1} tokens, got {len(tokens)}")
    starts = torch.linspace(0, len(tokens) - seq - 2, windows).long()
    x, y = tiny.batch_at(tokens, starts, seq)
    with tiny.one_thread():
        logp = torch.log_softmax(attention.forward(w, x).float(), dim=-1)[:, warmup:]
    y = y[:, warmup:]
    hit = logp.argmax(-1) == y
    return ContinuationScore({int(k): float(exact_runs(hit, k).float().mean()) for k in ks},
                             float(hit.float().mean()), float(logp.gather(-1, y[..., None]).mean()))
