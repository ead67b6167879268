"""Why low rank works: best rank-r approximations of a weight update, and the update full finetuning makes."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from llmlab.lora.training import train_adapter


def low_rank_approximation(delta: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-r approximation of a matrix (truncated SVD, Eckart-Young).

    >>> low_rank_approximation(torch.tensor([[3.0, 0.0], [0.0, 1.0]]), r=1).tolist()
    [[3.0, 0.0], [0.0, 0.0]]
    """
    if not isinstance(delta, torch.Tensor) or delta.dim() != 2:
        raise ValueError(f"delta must be a 2-d tensor, got {getattr(delta, 'shape', type(delta).__name__)}")
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= min(delta.shape):
        raise ValueError(f"r must be an int in [1, {min(delta.shape)}], got {r!r}")
    u, s, vh = torch.linalg.svd(delta.double(), full_matrices=False)
    return ((u[:, :r] * s[:r]) @ vh[:r]).to(delta.dtype)


def relative_reconstruction_error(delta: torch.Tensor, ranks: Sequence[int]) -> list[float]:
    """||delta - rank-r approximation||_F / ||delta||_F for each r, from one SVD."""
    if not isinstance(delta, torch.Tensor) or delta.dim() != 2:
        raise ValueError(f"delta must be a 2-d tensor, got {getattr(delta, 'shape', type(delta).__name__)}")
    s = torch.linalg.svdvals(delta.double())
    energy = (s ** 2).flip(0).cumsum(0).flip(0)  # energy[k] = sum of s_i^2 for i >= k
    total = energy[0].item()
    out = []
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= len(s):
            raise ValueError(f"ranks must be ints in [0, {len(s)}], got {r!r}")
        out.append(math.sqrt(energy[r].item() / total) if r < len(s) else 0.0)
    return out


def one_matrix_update(model, tokenizer, encoded: Sequence[dict], module: str, steps: int = 8,
                      batch_size: int = 4, lr: float = 1e-4, seed: int = 0) -> torch.Tensor:
    """The update W_after - W_before that full finetuning (AdamW) on encoded examples makes to one weight matrix."""
    names = dict(model.named_modules())
    if module not in names or not isinstance(names[module], nn.Linear):
        linear = [n for n, m in names.items() if isinstance(m, nn.Linear)]
        raise ValueError(f"module must name an nn.Linear of the model, got {module!r}; e.g. {linear[-4:]}")
    weight = names[module].weight
    before = weight.detach().clone()
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    weight.requires_grad_(True)
    try:
        train_adapter(model, tokenizer, encoded, steps=steps, batch_size=batch_size, lr=lr, seed=seed)
        delta = weight.detach() - before
    finally:
        with torch.no_grad():
            weight.copy_(before)
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
    return delta
