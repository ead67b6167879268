"""LLM.int8() (Dettmers et al., 2022): vector-wise int8 matmul and the split of outlier columns."""

from __future__ import annotations

import torch

from llmlab import validate as V
from llmlab.quantization.tensor import absmax_quantize


def int8_matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T with x quantized per row and w per output row to int8 (absmax), int64 accumulation."""
    V.float_tensor("x", x)
    V.float_tensor("w", w)
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (tokens, in) and w (out, in) with the same in, got {tuple(x.shape)} and "
                         f"{tuple(w.shape)}")
    qx, sx = absmax_quantize(x, 8, "channel")
    qw, sw = absmax_quantize(w, 8, "channel")
    return (qx.long() @ qw.long().T).float() * sx * sw.T


def llm_int8_matmul(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> tuple[torch.Tensor, torch.Tensor]:
    """LLM.int8(): input columns with any |x| > threshold go through a float matmul, the rest through int8.

    Returns the output and a boolean mask of the outlier columns.
    """
    if not isinstance(threshold, (int, float)) or threshold <= 0:
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    V.float_tensor("x", x)
    V.float_tensor("w", w)
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (tokens, in) and w (out, in) with the same in, got {tuple(x.shape)} and "
                         f"{tuple(w.shape)}")
    outliers = (x.abs() > threshold).any(0)
    out = x[:, outliers].float() @ w[:, outliers].float().T
    if (~outliers).any():
        out = out + int8_matmul(x[:, ~outliers], w[:, ~outliers])
    return out, outliers
