"""Logits processors (temperature, top-k, top-p, min-p, repetition penalty): pure, batched, transformers' order."""

from __future__ import annotations

from typing import Sequence

import torch

from llmlab.sampling.settings import (
    NEG_INF,
    SamplingSettings,
    _validate_logits,
    validate_min_p,
    validate_penalty,
    validate_temperature,
    validate_top_k,
    validate_top_p,
)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by the temperature; temperature 0 keeps only the argmax (greedy).

    >>> apply_temperature(torch.tensor([2.0, 1.0, 0.0]), 2.0)
    tensor([1.0000, 0.5000, 0.0000])
    """
    _validate_logits(logits)
    return _temperature(logits, validate_temperature(temperature))


def _temperature(logits: torch.Tensor, t: float) -> torch.Tensor:
    """apply_temperature's maths on already-validated arguments (the per-token path)."""
    if t == 0:
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, NEG_INF)
    return logits / t


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities softmax(logits / T) along the last axis; T=0 puts all mass on the argmax.

    >>> softmax_with_temperature(torch.tensor([1.0, 0.0]), 0.5)
    tensor([0.8808, 0.1192])
    """
    return torch.softmax(apply_temperature(logits, temperature), dim=-1)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Logits with everything below the k-th largest set to -inf (ties kept); top_k=0 keeps all.

    >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0]), 2)
    tensor([-inf, 3., 2.])
    """
    _validate_logits(logits)
    return _top_k(logits, validate_top_k(top_k))


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """top_k_filter's maths on already-validated arguments."""
    if k == 0 or k >= logits.shape[-1]:
        return logits.clone()
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits outside the nucleus (smallest most-likely set with probability >= top_p) set to -inf.

    >>> top_p_filter(torch.tensor([2.0, 1.0, 0.0]), 0.7)  # probabilities 0.67, 0.24, 0.09
    tensor([2., 1., -inf])
    """
    _validate_logits(logits)
    return _top_p(logits, validate_top_p(top_p))


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """top_p_filter's maths on already-validated arguments."""
    if p == 1:
        return logits.clone()
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Logits of tokens less likely than min_p times the top token's probability set to -inf.

    >>> min_p_filter(torch.tensor([2.0, 1.0, -2.0]), 0.2)  # keeps p >= 0.2 * the top p
    tensor([2., 1., -inf])
    """
    _validate_logits(logits)
    return _min_p(logits, validate_min_p(min_p))


def _min_p(logits: torch.Tensor, m: float) -> torch.Tensor:
    """min_p_filter's maths on already-validated arguments."""
    if m == 0:
        return logits.clone()
    probs = logits.softmax(dim=-1)
    drop = probs < m * probs.amax(dim=-1, keepdim=True)
    drop.scatter_(-1, probs.argmax(dim=-1, keepdim=True), False)
    return logits.masked_fill(drop, NEG_INF)


def repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Logits of tokens already in input_ids made less likely: positive ones divided, negative ones multiplied.

    >>> repetition_penalty(torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0, 1]), 2.0)
    tensor([ 1.0000, -2.0000,  0.5000])
    """
    _validate_logits(logits)
    _validate_history(input_ids, logits)
    return _repetition_penalty(logits, input_ids, validate_penalty(penalty))


def _validate_history(input_ids: torch.Tensor, logits: torch.Tensor) -> None:
    """The ids a repetition penalty looks back on: integers with the same leading shape as logits."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32) \
            or input_ids.dim() != logits.dim() or input_ids.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"input_ids must be an integer tensor with the same leading shape as logits "
                         f"{tuple(logits.shape[:-1])}, got {getattr(input_ids, 'shape', type(input_ids).__name__)}")


def _repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, value: float) -> torch.Tensor:
    """repetition_penalty's maths on already-validated arguments."""
    ids = input_ids.long()
    seen = logits.gather(-1, ids)
    seen = torch.where(seen < 0, seen * value, seen / value)
    return logits.scatter(-1, ids, seen)


def process_logits(logits: torch.Tensor, settings: SamplingSettings,
                   input_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Apply repetition penalty, temperature, top-k, top-p and min-p in that order (transformers' order).

    The order matters: temperature reshapes the distribution first, so top-p and min-p measure probability
    mass after it; top-k before top-p caps how many tokens the nucleus can hold. Logits are checked once here
    (NaN and +inf rejected, -inf masks allowed), never again inside the chain.
    """
    if not isinstance(settings, SamplingSettings):
        raise TypeError(f"settings must be a SamplingSettings, got {type(settings).__name__}")
    _validate_logits(logits)
    if settings.repetition_penalty != 1:
        if input_ids is None:
            raise ValueError("input_ids must be given when repetition_penalty != 1, got None")
        _validate_history(input_ids, logits)
    return _process(logits, settings, input_ids)


def _process(logits: torch.Tensor, settings: SamplingSettings, input_ids: torch.Tensor | None) -> torch.Tensor:
    """process_logits' chain on already-validated arguments (the per-token path)."""
    out = logits
    if settings.repetition_penalty != 1:
        out = _repetition_penalty(out, input_ids, settings.repetition_penalty)
    # settings were validated when the SamplingSettings was made: the per-token path skips re-checking them
    out = _temperature(out, settings.temperature)
    out = _top_k(out, settings.top_k)
    out = _top_p(out, settings.top_p)
    return _min_p(out, settings.min_p)


def sampling_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                          min_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """For 1-d logits: the final sampling probabilities and the boolean mask of kept tokens."""
    _validate_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be 1-d (vocab,), got shape {tuple(logits.shape)}")
    processed = _process(logits.float(), SamplingSettings(temperature, top_k, top_p, min_p), None)
    kept = torch.isfinite(processed)
    return torch.softmax(processed, dim=-1), kept


def probabilities_vs_temperature(logits: torch.Tensor, temperatures: Sequence[float]) -> torch.Tensor:
    """softmax(logits / T) for each temperature: a (len(temperatures), vocab) tensor."""
    _validate_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be 1-d (vocab,), got shape {tuple(logits.shape)}")
    x = logits.float()
    return torch.stack([torch.softmax(_temperature(x, validate_temperature(t)), dim=-1) for t in temperatures])
