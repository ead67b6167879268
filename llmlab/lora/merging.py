"""Merging adapters and models: concatenation, task arithmetic, SLERP, TIES and DARE."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def _validate_same_shapes(name: str, tensors: Sequence[torch.Tensor]) -> None:
    """Raise unless tensors is a non-empty sequence of tensors of one shape."""
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError(f"{name} must be a non-empty list of tensors, got {tensors!r}")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"{name} must all have the same shape, got {sorted(shapes)}")


def task_arithmetic(base: torch.Tensor, task_vectors: Sequence[torch.Tensor],
                    weights: Sequence[float] | None = None) -> torch.Tensor:
    """base + sum_i w_i * tau_i, where tau_i = finetuned_i - base (a linear merge of task vectors)."""
    _validate_same_shapes("task_vectors", [base, *task_vectors])
    weights = [1.0] * len(task_vectors) if weights is None else list(weights)
    if len(weights) != len(task_vectors):
        raise ValueError(f"weights must have one entry per task vector ({len(task_vectors)}), got {len(weights)}")
    return base + sum(w * t for w, t in zip(weights, task_vectors))


def concat_lora(adapters: Sequence[tuple[torch.Tensor, torch.Tensor]],
                weights: Sequence[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One adapter (A, B) of rank sum(r_i) whose B @ A equals sum_i w_i * B_i @ A_i exactly."""
    if not adapters:
        raise ValueError("adapters must be a non-empty list of (A, B) pairs, got []")
    weights = [1.0] * len(adapters) if weights is None else list(weights)
    if len(weights) != len(adapters):
        raise ValueError(f"weights must have one entry per adapter ({len(adapters)}), got {len(weights)}")
    for i, (a, b) in enumerate(adapters):
        if a.dim() != 2 or b.dim() != 2 or b.shape[1] != a.shape[0]:
            raise ValueError(f"adapters[{i}] must be (A of shape (r, d_in), B of shape (d_out, r)), got "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
    return (torch.cat([a for a, _ in adapters], dim=0),
            torch.cat([w * b for (_, b), w in zip(adapters, weights)], dim=1))


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation between two weight tensors (treated as flat vectors); lerp when nearly parallel."""
    _validate_same_shapes("v0 and v1", [v0, v1])
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
        raise ValueError(f"t must be in [0, 1], got {t!r}")
    a, b = v0.flatten().double(), v1.flatten().double()
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(eps)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if theta.abs() < 1e-4:
        out = (1 - t) * a + t * b
    else:
        out = (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)
    return out.reshape(v0.shape).to(v0.dtype)


def trim_top_k(tau: torch.Tensor, density: float) -> torch.Tensor:
    """TIES step 1: keep the `density` share of entries with the largest magnitude, zero the rest."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    k = max(1, math.ceil(density * tau.numel()))
    threshold = tau.abs().flatten().kthvalue(tau.numel() - k + 1).values
    return torch.where(tau.abs() >= threshold, tau, torch.zeros_like(tau))


def elect_sign(trimmed: Sequence[torch.Tensor]) -> torch.Tensor:
    """TIES step 2: per entry, the sign (+1/-1, 0 if none) of the summed trimmed task vectors (the larger mass)."""
    _validate_same_shapes("trimmed", trimmed)
    return torch.sign(torch.stack(list(trimmed)).sum(0))


def ties_merge(task_vectors: Sequence[torch.Tensor], density: float = 0.2) -> torch.Tensor:
    """TIES-merging (Yadav et al. 2023): trim, elect sign, then average only the entries agreeing with the sign."""
    _validate_same_shapes("task_vectors", task_vectors)
    trimmed = torch.stack([trim_top_k(t, density) for t in task_vectors])
    sign = elect_sign(list(trimmed))
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    count = agree.sum(0).clamp_min(1)
    return (trimmed * agree).sum(0) / count


def dare(tau: torch.Tensor, drop_rate: float, seed: int = 0) -> torch.Tensor:
    """DARE (Yu et al. 2023): drop each entry with probability drop_rate, rescale the rest by 1 / (1 - drop_rate)."""
    if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
        raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(tau.shape, generator=gen) >= drop_rate
    return torch.where(keep, tau / (1 - drop_rate), torch.zeros_like(tau))
