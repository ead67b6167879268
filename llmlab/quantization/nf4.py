"""NF4 (QLoRA's 4-bit NormalFloat) codes per block of absmax scales, and double quantization of the scales."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab import validate as V
from llmlab.quantization.tensor import absmax_quantize, dequantize

# The 16 NF4 levels of QLoRA (Dettmers et al., 2023), as bitsandbytes stores them.
NF4_CODEBOOK = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
])


def nf4_codebook(offset: float = 0.9677083) -> torch.Tensor:
    """Build the 16 NF4 levels from normal quantiles as QLoRA does (8 positive, 7 negative, and 0), in [-1, 1].

    >>> codes = nf4_codebook()
    >>> len(codes), codes[0].item(), codes[7].item(), codes[-1].item()
    (16, -1.0, 0.0, 1.0)
    """
    if not 0.5 < offset < 1.0:
        raise ValueError(f"offset must be in (0.5, 1), got {offset!r}")
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    pos = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    values = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (values / values.abs().max()).float()


def nf4_nearest(x: torch.Tensor) -> torch.Tensor:
    """Index (0..15, int64) of the NF4 level nearest to each value of x (x already scaled into [-1, 1])."""
    V.float_tensor("x", x)
    return (x.float()[..., None] - NF4_CODEBOOK).abs().argmin(-1)


def nf4_quantize(x: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 codes (uint8, shape of x) and one absmax per block of `block_size` consecutive values (flattened)."""
    V.finite("x", V.float_tensor("x", x))
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if x.numel() % block_size:
        raise ValueError(f"block_size must divide the number of values ({x.numel()}), got {block_size}")
    blocks = x.float().reshape(-1, block_size)
    absmax = blocks.abs().amax(-1)
    safe = torch.where(absmax == 0, torch.ones_like(absmax), absmax)
    codes = nf4_nearest(blocks / safe[:, None]).to(torch.uint8)
    return codes.reshape(x.shape), absmax


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """Float32 values from NF4 codes and per-block absmax (block size = codes.numel() / absmax.numel())."""
    if not isinstance(codes, torch.Tensor) or codes.dtype != torch.uint8:
        raise TypeError(f"codes must be a uint8 torch.Tensor, got {getattr(codes, 'dtype', type(codes).__name__)}")
    V.float_tensor("absmax", absmax)
    if codes.numel() % absmax.numel():
        raise ValueError(f"absmax must have one value per block of codes ({codes.numel()} codes), "
                         f"got {absmax.numel()} values")
    values = NF4_CODEBOOK[codes.long()].reshape(absmax.numel(), -1) * absmax.float().reshape(-1, 1)
    return values.reshape(codes.shape)


def double_quantize(absmax: torch.Tensor, block_size: int = 256) -> tuple[torch.Tensor, torch.Tensor, float]:
    """QLoRA-style double quantization of the NF4 scales: int8 codes, one fp32 scale per block, and the mean.

    The mean is subtracted first, then each block of `block_size` scales is absmax-quantized to int8 (QLoRA and
    bitsandbytes use a dynamic 8-bit map instead of linear int8). A last partial block is allowed.
    """
    V.float_tensor("absmax", absmax)
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    flat = absmax.float().reshape(-1)
    offset = float(flat.mean())
    centred = F.pad(flat - offset, (0, (-flat.numel()) % block_size))
    q, scale = absmax_quantize(centred, 8, "group", block_size)
    return q[: flat.numel()], scale, offset


def double_dequantize(q: torch.Tensor, scales: torch.Tensor, offset: float, block_size: int = 256) -> torch.Tensor:
    """The NF4 scales recovered from double_quantize's int8 codes, block scales and mean."""
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 torch.Tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    if not isinstance(block_size, int) or block_size < 1 or scales.numel() != math.ceil(q.numel() / block_size):
        raise ValueError(f"block_size must give one scale per block: {q.numel()} codes and {scales.numel()} "
                         f"scales, got block_size={block_size!r}")
    padded = F.pad(q.reshape(-1), (0, (-q.numel()) % block_size))
    return dequantize(padded, scales.float())[: q.numel()] + offset
