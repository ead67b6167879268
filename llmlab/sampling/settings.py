"""Argument checks of the sampling parameters and SamplingSettings, one decoding configuration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from llmlab import validate as V

NEG_INF = float("-inf")


def _validate_logits(logits: torch.Tensor) -> None:
    """Reject anything but a floating tensor (..., vocab) of finite logits or -inf masks (NaN and +inf are errors).

    Each public entry point calls this once; the processors inside a chain (process_logits) never re-check.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor of shape (..., vocab), got {type(logits).__name__}")
    if logits.dim() < 1 or logits.shape[-1] < 1 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor of shape (..., vocab), got shape "
                         f"{tuple(logits.shape)} and dtype {logits.dtype}")
    V.finite("logits", logits, allow_neg_inf=True)


def _number(name: str, value) -> float:
    """A real number (not a bool), else TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def validate_temperature(temperature: float) -> float:
    """Validate a temperature: a number >= 0 (0 means greedy)."""
    value = _number("temperature", temperature)
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"temperature must be in [0, inf) (0 means greedy), got {temperature!r}")
    return value


def validate_top_k(top_k: int) -> int:
    """Validate top_k: an int >= 0 (0 means no top-k filtering)."""
    V.integer("top_k", top_k)  # TypeError for a non-int, as for every parameter
    if top_k < 0:
        raise ValueError(f"top_k must be an int in [0, inf) (0 means off), got {top_k!r}")
    return top_k


def validate_top_p(top_p: float) -> float:
    """Validate top_p: a number in (0, 1] (1 means no nucleus filtering)."""
    return V.number("top_p", top_p, 0, 1, low_open=True)


def validate_min_p(min_p: float) -> float:
    """Validate min_p: a number in [0, 1] (0 means no min-p filtering)."""
    return V.probability("min_p", min_p)


def validate_penalty(penalty: float) -> float:
    """Validate a repetition penalty: a number > 0 (1 means no penalty)."""
    value = _number("penalty", penalty)
    if not value > 0 or math.isinf(value):
        raise ValueError(f"penalty must be in (0, inf) (1 means off), got {penalty!r}")
    return value


@dataclass(frozen=True)
class SamplingSettings:
    """One decoding configuration: temperature (0 = greedy), top-k, top-p, min-p and repetition penalty."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        validate_temperature(self.temperature)
        validate_top_k(self.top_k)
        validate_top_p(self.top_p)
        validate_min_p(self.min_p)
        validate_penalty(self.repetition_penalty)

    @property
    def greedy(self) -> bool:
        """Whether this configuration always picks the most likely token."""
        return self.temperature == 0
