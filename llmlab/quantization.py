"""Number formats, absmax/zero-point/NF4 quantizers, LLM.int8() outliers, model-level int8/int4 and bitsandbytes."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmlab import models
from llmlab.evaluation import perplexity
from llmlab.tokens import pad_token_id

# ---------------------------------------------------------------------------------------------------------------
# Number formats
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format: 1 sign bit, `exponent` bits, `mantissa` stored fraction bits."""

    name: str
    exponent: int
    mantissa: int
    has_inf: bool = True
    max_override: float | None = None

    @property
    def bits(self) -> int:
        """Total bits: sign + exponent + mantissa."""
        return 1 + self.exponent + self.mantissa

    @property
    def bias(self) -> int:
        """Exponent bias: 2**(exponent-1) - 1."""
        return 2 ** (self.exponent - 1) - 1

    @property
    def emin(self) -> int:
        """Smallest normal exponent."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Largest exponent of a finite value."""
        return 2 ** self.exponent - 2 - self.bias if self.has_inf else 2 ** self.exponent - 1 - self.bias

    @property
    def max(self) -> float:
        """Largest finite value."""
        if self.max_override is not None:
            return self.max_override
        return (2 - 2.0 ** -self.mantissa) * 2.0 ** self.emax


FLOAT_FORMATS: dict[str, FloatFormat] = {
    "fp32": FloatFormat("fp32", 8, 23),
    "tf32": FloatFormat("tf32", 8, 10),
    "fp16": FloatFormat("fp16", 5, 10),
    "bf16": FloatFormat("bf16", 8, 7),
    "fp8_e5m2": FloatFormat("fp8_e5m2", 5, 2),
    "fp8_e4m3": FloatFormat("fp8_e4m3", 4, 3, has_inf=False, max_override=448.0),
}
INT_FORMATS: dict[str, tuple[int, int]] = {"int8": (-128, 127), "int4": (-8, 7)}

# The 16 NF4 levels of QLoRA (Dettmers et al., 2023), as bitsandbytes stores them.
NF4_CODEBOOK = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
])
FORMATS: tuple[str, ...] = (*FLOAT_FORMATS, *INT_FORMATS, "nf4")
ROUNDING_MODES = ("nearest", "truncate")
BOOK_VALUES = (1234.56789, 12345.6789, 123456.789, 1234567.89)


def _check_format(fmt: str) -> None:
    """Reject unknown format names."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {list(FORMATS)}, got {fmt!r}")


def _check_mode(mode: str) -> None:
    """Reject unknown rounding modes."""
    if mode not in ROUNDING_MODES:
        raise ValueError(f"mode must be one of {list(ROUNDING_MODES)}, got {mode!r}")


def format_info(fmt: str) -> dict:
    """Bit layout and range of a format: bits, sign/exponent/mantissa bits, max, smallest normal/subnormal."""
    _check_format(fmt)
    if fmt in FLOAT_FORMATS:
        f = FLOAT_FORMATS[fmt]
        return {"name": fmt, "bits": f.bits, "sign": 1, "exponent": f.exponent, "mantissa": f.mantissa,
                "max": f.max, "min_normal": 2.0 ** f.emin, "min_subnormal": 2.0 ** (f.emin - f.mantissa),
                "epsilon": 2.0 ** -f.mantissa, "levels": None}
    if fmt in INT_FORMATS:
        lo, hi = INT_FORMATS[fmt]
        return {"name": fmt, "bits": int(math.log2(hi - lo + 1)), "sign": 1, "exponent": 0, "mantissa": None,
                "max": float(hi), "min_normal": None, "min_subnormal": None, "epsilon": 1.0, "levels": hi - lo + 1}
    return {"name": fmt, "bits": 4, "sign": None, "exponent": None, "mantissa": None, "max": 1.0,
            "min_normal": None, "min_subnormal": None, "epsilon": None, "levels": 16}


def _round_float(a: np.ndarray, f: FloatFormat, mode: str) -> np.ndarray:
    """Round non-negative finite magnitudes to format f (IEEE semantics, subnormals included)."""
    _, k = np.frexp(a)
    e = np.maximum(k.astype(np.int64) - 1, f.emin)
    step = np.ldexp(1.0, e - f.mantissa)
    units = a / step
    out = (np.round(units) if mode == "nearest" else np.floor(units)) * step
    overflow = np.inf if (mode == "nearest" and f.has_inf) else f.max
    return np.where(out > f.max, overflow, out)


def round_to_format(x, fmt: str, mode: str = "nearest"):
    """The value(s) nearest to x representable in fmt ('nearest': ties to even; 'truncate': toward zero).

    Floats follow IEEE 754: round-to-nearest overflows to inf, rounding toward zero saturates at the largest
    finite value; fp8_e4m3 has no inf and saturates at ±448 (as torch's float8_e4m3fn cast does). int8/int4 round to the nearest integer and clamp;
    nf4 returns the nearest of its 16 levels in [-1, 1].
    """
    _check_format(fmt)
    _check_mode(mode)
    arr = np.asarray(x, dtype=np.float64)
    if fmt in INT_FORMATS:
        lo, hi = INT_FORMATS[fmt]
        out = np.clip(np.round(arr) if mode == "nearest" else np.trunc(arr), lo, hi)
    elif fmt == "nf4":
        book = NF4_CODEBOOK.double().numpy()
        clipped = np.clip(arr, -1.0, 1.0)
        idx = np.abs(clipped[..., None] - book).argmin(-1)
        if mode == "truncate":
            idx = np.where(book[idx] * np.sign(clipped) > np.abs(clipped), idx - np.sign(clipped).astype(int), idx)
        out = book[idx]
    else:
        f = FLOAT_FORMATS[fmt]
        mag = np.abs(arr)
        finite = np.isfinite(mag)
        rounded = _round_float(np.where(finite, mag, 0.0), f, mode)
        big = np.inf if f.has_inf else np.nan
        out = np.copysign(np.where(finite, rounded, np.where(np.isnan(mag), np.nan, big)), arr)
    return float(out) if out.ndim == 0 else out


def bit_fields(x: float, fmt: str, mode: str = "nearest") -> tuple[str, str, str]:
    """Sign, exponent and mantissa bit strings of x after rounding it to a float format."""
    if fmt not in FLOAT_FORMATS:
        raise ValueError(f"fmt must be one of the float formats {list(FLOAT_FORMATS)}, got {fmt!r}")
    f = FLOAT_FORMATS[fmt]
    v = round_to_format(float(x), fmt, mode)
    sign = "1" if math.copysign(1.0, v) < 0 else "0"
    a = abs(v)
    ones = "1" * f.exponent
    if math.isnan(v):
        return sign, ones, "1" * f.mantissa
    if math.isinf(v):
        return sign, ones, "0" * f.mantissa
    if a == 0:
        return sign, "0" * f.exponent, "0" * f.mantissa
    e = math.frexp(a)[1] - 1
    if e < f.emin:
        return sign, "0" * f.exponent, format(round(a / 2.0 ** (f.emin - f.mantissa)), f"0{f.mantissa}b")
    frac = round((a / 2.0 ** e - 1) * 2 ** f.mantissa)
    return sign, format(e + f.bias, f"0{f.exponent}b"), format(frac, f"0{f.mantissa}b")


def book_table(values: Sequence[float] = BOOK_VALUES, formats: Sequence[str] = ("fp16", "bf16", "tf32"),
               mode: str = "nearest") -> list[dict]:
    """Rows {'value': v, fmt: v rounded to fmt, ...}: the book's FP16/BF16/TF32 table."""
    _check_mode(mode)
    for fmt in formats:
        _check_format(fmt)
    return [{"value": float(v), **{fmt: round_to_format(float(v), fmt, mode) for fmt in formats}} for v in values]


# ---------------------------------------------------------------------------------------------------------------
# Tensor quantizers
# ---------------------------------------------------------------------------------------------------------------

GRANULARITIES = ("tensor", "channel", "group")


def _check_float_tensor(x, name: str = "x") -> None:
    """Reject non-tensors and integer/bool tensors."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")


def _check_bits(bits, allowed: Sequence[int] = range(2, 9)) -> None:
    """Reject unsupported bit widths."""
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in allowed:
        raise ValueError(f"bits must be one of {list(allowed)}, got {bits!r}")


def _grouped(x: torch.Tensor, granularity: str, group_size: int | None) -> torch.Tensor:
    """View x as (..., n_groups, group) along its last dimension ('tensor': one group of everything)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
    if granularity == "tensor":
        return x.reshape(1, -1)
    if granularity == "channel":
        return x.reshape(*x.shape[:-1], 1, x.shape[-1])
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
        raise ValueError(f"group_size must be a positive int for granularity='group', got {group_size!r}")
    if x.shape[-1] % group_size:
        raise ValueError(f"group_size must divide the last dimension ({x.shape[-1]}), got {group_size}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // group_size, group_size)


def _scale_shape(scale: torch.Tensor, granularity: str) -> torch.Tensor:
    """Scales of shape () for a whole tensor, else (..., n_groups)."""
    return scale.reshape(()) if granularity == "tensor" else scale


def absmax_quantize(x: torch.Tensor, bits: int = 8, granularity: str = "tensor",
                    group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantization: int8 codes q in [-(2**(bits-1)-1), 2**(bits-1)-1] and scales with x ≈ q * scale.

    Scales have shape () per tensor, (..., 1) per channel (row) and (..., n_groups) per group along the last dim.
    """
    _check_float_tensor(x)
    _check_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    g = _grouped(x.float(), granularity, group_size)
    scale = g.abs().amax(-1) / qmax
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(g / scale[..., None]).clamp(-qmax, qmax).to(torch.int8).reshape(x.shape)
    return q, _scale_shape(scale, granularity)


def zeropoint_quantize(x: torch.Tensor, bits: int = 8, granularity: str = "tensor",
                       group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Affine quantization: uint8 codes q in [0, 2**bits-1], scales and integer zero points, x ≈ (q - zp) * scale.

    The range [min, max] is widened to include 0, so that 0 is represented exactly.
    """
    _check_float_tensor(x)
    _check_bits(bits)
    levels = 2 ** bits - 1
    g = _grouped(x.float(), granularity, group_size)
    lo = g.amin(-1).clamp(max=0.0)
    hi = g.amax(-1).clamp(min=0.0)
    scale = (hi - lo) / levels
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero_point = torch.round(-lo / scale).clamp(0, levels)
    q = (torch.round(g / scale[..., None]) + zero_point[..., None]).clamp(0, levels).to(torch.uint8)
    return q.reshape(x.shape), _scale_shape(scale, granularity), _scale_shape(zero_point.to(torch.int32), granularity)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None) -> torch.Tensor:
    """Float32 values from integer codes: q * scale, or (q - zero_point) * scale; scales as the quantizers return."""
    if not isinstance(q, torch.Tensor) or q.is_floating_point() or q.dtype == torch.bool:
        raise TypeError(f"q must be an integer torch.Tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    _check_float_tensor(scale, "scale")
    if scale.dim() == 0:
        groups = q.float().reshape(1, -1)
        scale_g = scale.reshape(1)
    else:
        if scale.shape[:-1] != q.shape[:-1] or q.shape[-1] % scale.shape[-1]:
            raise ValueError(f"scale must have shape () or (..., n_groups) matching q {tuple(q.shape)}, "
                             f"got {tuple(scale.shape)}")
        groups = q.float().reshape(*q.shape[:-1], scale.shape[-1], q.shape[-1] // scale.shape[-1])
        scale_g = scale
    if zero_point is not None:
        if not isinstance(zero_point, torch.Tensor) or zero_point.shape != scale.shape:
            raise ValueError(f"zero_point must be a tensor shaped like scale {tuple(scale.shape)}, got "
                             f"{tuple(zero_point.shape) if isinstance(zero_point, torch.Tensor) else zero_point!r}")
        groups = groups - zero_point.reshape(scale_g.shape).float()[..., None]
    return (groups * scale_g.float()[..., None]).reshape(q.shape)


def quantize_dequantize(x: torch.Tensor, method: str = "absmax", bits: int = 8, granularity: str = "tensor",
                        group_size: int | None = None) -> torch.Tensor:
    """Round trip x through a quantizer ('absmax', 'zeropoint' or 'nf4' with blocks of group_size, default 64)."""
    if method == "absmax":
        return dequantize(*absmax_quantize(x, bits, granularity, group_size)).reshape(x.shape)
    if method == "zeropoint":
        return dequantize(*zeropoint_quantize(x, bits, granularity, group_size)).reshape(x.shape)
    if method == "nf4":
        return nf4_dequantize(*nf4_quantize(x, group_size or 64))
    raise ValueError(f"method must be one of ['absmax', 'zeropoint', 'nf4'], got {method!r}")


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two signed 4-bit codes in [-8, 7] per uint8 byte along the last dimension (which must be even)."""
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 torch.Tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    if q.shape[-1] % 2:
        raise ValueError(f"q's last dimension must be even to pack two codes per byte, got {q.shape[-1]}")
    if q.numel() and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"q must hold 4-bit codes in [-8, 7], got range [{int(q.min())}, {int(q.max())}]")
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The int8 codes in [-8, 7] stored by pack_int4."""
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 torch.Tensor, got {getattr(packed, 'dtype', type(packed).__name__)}")
    low = (packed & 0x0F).to(torch.int8) - 8
    high = (packed >> 4).to(torch.int8) - 8
    return torch.stack([low, high], dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * 2)


# ---------------------------------------------------------------------------------------------------------------
# NF4 and double quantization
# ---------------------------------------------------------------------------------------------------------------


def nf4_codebook(offset: float = 0.9677083) -> torch.Tensor:
    """Build the 16 NF4 levels from normal quantiles as QLoRA does (8 positive, 7 negative, and 0), in [-1, 1]."""
    if not 0.5 < offset < 1.0:
        raise ValueError(f"offset must be in (0.5, 1), got {offset!r}")
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    pos = normal.icdf(torch.linspace(offset, 0.5, 9, dtype=torch.float64)[:-1])
    neg = -normal.icdf(torch.linspace(offset, 0.5, 8, dtype=torch.float64)[:-1])
    values = torch.cat([pos, torch.zeros(1, dtype=torch.float64), neg]).sort().values
    return (values / values.abs().max()).float()


def nf4_nearest(x: torch.Tensor) -> torch.Tensor:
    """Index (0..15, int64) of the NF4 level nearest to each value of x (x already scaled into [-1, 1])."""
    _check_float_tensor(x)
    return (x.float()[..., None] - NF4_CODEBOOK).abs().argmin(-1)


def nf4_quantize(x: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 codes (uint8, shape of x) and one absmax per block of `block_size` consecutive values (flattened)."""
    _check_float_tensor(x)
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
    _check_float_tensor(absmax, "absmax")
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
    _check_float_tensor(absmax, "absmax")
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


def nf4_bits_per_param(block_size: int = 64, double_quant: bool = False, dq_block_size: int = 256) -> float:
    """Average bits per weight of NF4 with fp32 block scales (4.5 at 64), or 8-bit double-quantized (≈4.127)."""
    for pname, value in [("block_size", block_size), ("dq_block_size", dq_block_size)]:
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{pname} must be a positive int, got {value!r}")
    if double_quant:
        return 4 + 8 / block_size + 32 / (block_size * dq_block_size)
    return 4 + 32 / block_size


# ---------------------------------------------------------------------------------------------------------------
# LLM.int8(): vector-wise int8 matmul and the outlier split
# ---------------------------------------------------------------------------------------------------------------


def int8_matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w.T with x quantized per row and w per output row to int8 (absmax), int64 accumulation."""
    _check_float_tensor(x)
    _check_float_tensor(w, "w")
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
    _check_float_tensor(x)
    _check_float_tensor(w, "w")
    if x.dim() != 2 or w.dim() != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must be (tokens, in) and w (out, in) with the same in, got {tuple(x.shape)} and "
                         f"{tuple(w.shape)}")
    outliers = (x.abs() > threshold).any(0)
    out = x[:, outliers].float() @ w[:, outliers].float().T
    if (~outliers).any():
        out = out + int8_matmul(x[:, ~outliers], w[:, ~outliers])
    return out, outliers


# ---------------------------------------------------------------------------------------------------------------
# Model level: own weight-only int8/int4, bitsandbytes, GGUF, memory
# ---------------------------------------------------------------------------------------------------------------


SCHEMES = ("absmax", "affine")


class QuantizedLinear(nn.Module):
    """A weight-only quantized nn.Linear: int8 or packed int4 codes with fp16 scales per row or per group.

    scheme 'absmax' is symmetric, w ≈ q·scale with q in [-(2^(b-1)-1), 2^(b-1)-1]; 'affine' uses all 2^b levels
    between each group's min and max, w ≈ q·scale + min with an fp16 min per group (GGUF's Q4_1 when b = 4 and the
    group is 32). The weight is dequantized on every forward (no fused kernel), so it saves memory, not time. Input
    widths that group_size does not divide are zero-padded to a multiple of it (counted in the footprint).
    """

    def __init__(self, linear: nn.Linear, bits: int = 8, group_size: int | None = None, scheme: str = "absmax"):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        _check_bits(bits, (4, 8))
        if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
            raise ValueError(f"group_size must be None (per row) or a positive int, got {group_size!r}")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {scheme!r}")
        weight = linear.weight.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.bits, self.scheme = bits, scheme
        self.group_size = group_size or self.in_features
        pad = (-self.in_features) % self.group_size
        if bits == 4 and (self.in_features + pad) % 2:
            raise ValueError(f"int4 packing needs an even padded input width, got {self.in_features + pad}")
        padded = F.pad(weight, (0, pad))
        groups = padded.reshape(self.out_features, -1, self.group_size)
        half = 2 ** (bits - 1)
        if scheme == "absmax":
            scale = (groups.abs().amax(-1) / (half - 1)).to(torch.float16)
            low, q_min, q_max = None, -(half - 1), half - 1
        else:
            low = groups.amin(-1).to(torch.float16)
            scale = ((groups.amax(-1) - low.float()) / (2 * half - 1)).to(torch.float16)
            q_min, q_max = 0, 2 * half - 1
        scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        shifted = groups if low is None else groups - low.float()[..., None]
        q = torch.round(shifted / scale.float()[..., None]).clamp(q_min, q_max)
        q = (q - (0 if low is None else half)).to(torch.int8).reshape(self.out_features, -1)  # stored in int8 range
        self.register_buffer("qweight", pack_int4(q) if bits == 4 else q)
        self.register_buffer("scale", scale)
        self.register_buffer("low", low)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight (out_features, in_features) these codes represent."""
        if self.bits == 4:
            w = torch.empty(self.out_features, self.qweight.shape[1] * 2)
            w[:, 0::2] = self.qweight & 0x0F
            w[:, 1::2] = self.qweight >> 4
            w.sub_(8)
        else:
            w = self.qweight.float()
        w = w.view(self.out_features, -1, self.group_size)
        if self.low is not None:
            w.add_(2 ** (self.bits - 1)).mul_(self.scale.float()[..., None]).add_(self.low.float()[..., None])
        else:
            w.mul_(self.scale.float()[..., None])
        return w.view(self.out_features, -1)[:, : self.in_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x @ W.T + b with W dequantized to x's dtype."""
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight().to(x.dtype), bias)

    def extra_repr(self) -> str:
        """Shape, bits and group size for print(model)."""
        return (f"in={self.in_features}, out={self.out_features}, bits={self.bits}, group_size={self.group_size}, "
                f"scheme={self.scheme}")


def quantize_model(model: nn.Module, bits: int = 8, group_size: int | None = None,
                   skip: Sequence[str] = ("lm_head",), scheme: str = "absmax") -> nn.Module:
    """Replace every nn.Linear (except names ending in `skip`) by a QuantizedLinear, in place; returns model."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_bits(bits, (4, 8))
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and not any(name.endswith(s) for s in skip)]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, QuantizedLinear(linear, bits, group_size, scheme))
    return model


def memory_footprint(model: nn.Module) -> int:
    """Bytes held by a model's parameters and buffers (shared tensors once), including bitsandbytes' scales."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    seen: set[int] = set()
    total = 0

    def add(t) -> None:
        nonlocal total
        if isinstance(t, torch.Tensor) and t.numel() and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()

    for p in [*model.parameters(), *model.buffers()]:
        add(p)
        add(getattr(p, "SCB", None))
        state = getattr(p, "quant_state", None)
        if state is not None:
            add(getattr(state, "absmax", None))
            add(getattr(state, "code", None))
            nested = getattr(state, "state2", None)
            if nested is not None:
                add(nested.absmax)
                add(nested.code)
    return total


def model_memory_gb(n_params: float, bits: float, group_size: int | None = None, scale_bits: int = 16) -> float:
    """Weight memory in GB (1e9 bytes) of n_params at `bits` each, plus one scale of scale_bits per group."""
    if not isinstance(n_params, (int, float)) or n_params <= 0:
        raise ValueError(f"n_params must be a positive number, got {n_params!r}")
    if not isinstance(bits, (int, float)) or not 0 < bits <= 64:
        raise ValueError(f"bits must be in (0, 64], got {bits!r}")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size must be None or a positive int, got {group_size!r}")
    per_param = bits + (scale_bits / group_size if group_size else 0)
    return n_params * per_param / 8 / 1e9


def bnb_status() -> tuple[bool, str]:
    """Whether bitsandbytes is importable here, and its version or the import error."""
    try:
        import bitsandbytes
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available", with the reason
        return False, f"bitsandbytes not importable: {type(exc).__name__}: {exc}"
    return True, f"bitsandbytes {bitsandbytes.__version__}"


@contextlib.contextmanager
def _quiet_bitsandbytes() -> Iterator[None]:
    """Silence bitsandbytes' per-call 'inputs will be cast to float16' warnings."""
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _source(name: str) -> str:
    """A folder for from_pretrained: a registered model's cache folder, or the name itself."""
    return str(models.fetch(name)) if name in models.MODELS else name


def load_bnb(bits: int = 4, name: str = models.DEFAULT_MODEL, device: str | torch.device | None = None):
    """Load a model with bitsandbytes 8-bit (LLM.int8()) or 4-bit NF4 weights (fp32 compute); returns the model."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    _check_bits(bits, (4, 8))
    ok, why = bnb_status()
    if not ok:
        raise RuntimeError(why)
    if bits == 8:
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.float32)
    target = models.device() if device is None else torch.device(device)
    with _quiet_bitsandbytes():
        model = AutoModelForCausalLM.from_pretrained(_source(name), quantization_config=config,
                                                     device_map={"": str(target)})
    return model.eval()


_GGUF_NAMES = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
               "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}


def _hf_name(gguf_name: str) -> str | None:
    """The transformers Llama parameter name of a GGUF tensor name (None for unknown tensors)."""
    if gguf_name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if gguf_name == "output_norm.weight":
        return "model.norm.weight"
    if gguf_name == "output.weight":
        return "lm_head.weight"
    parts = gguf_name.split(".")
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in _GGUF_NAMES:
        return f"model.layers.{parts[1]}.{_GGUF_NAMES[parts[2]]}.{parts[3]}"
    return None


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rotary re-ordering of q/k rows."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_state_dict(path: str | Path, config) -> tuple[dict[str, torch.Tensor], dict[str, int], int]:
    """Dequantize every tensor of a Llama GGUF with the gguf package: (state dict, tensor types, stored bytes)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize as gguf_dequantize

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path must be an existing .gguf file, got {str(path)!r}")
    reader = GGUFReader(path)
    state, types, stored = {}, {}, 0
    for t in reader.tensors:
        name = _hf_name(t.name)
        if name is None:
            continue
        w = np.asarray(gguf_dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(n) for n in reversed(t.shape)]) if w.size == int(np.prod(t.shape)) else w
        if ".attn_q." in t.name:
            w = _unpermute(w, config.num_attention_heads)
        elif ".attn_k." in t.name:
            w = _unpermute(w, config.num_key_value_heads)
        state[name] = torch.from_numpy(w.copy())
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
        stored += int(t.n_bytes)
    return state, types, stored


def load_gguf(path: str | Path, name: str = models.DEFAULT_MODEL):
    """A Llama built from a GGUF dequantized with the gguf package: (fp32 model, tensor types, stored bytes)."""
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(_source(name))
    state, types, stored = gguf_state_dict(path, config)
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"path does not hold this model's tensors: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.eval(), types, stored


def max_weight_difference(a: nn.Module, b: nn.Module) -> float:
    """Largest |a - b| over the parameters the two models share by name."""
    pb = dict(b.named_parameters())
    diffs = [(p.detach().float() - pb[n].detach().float()).abs().max().item()
             for n, p in a.named_parameters() if n in pb and pb[n].shape == p.shape]
    if not diffs:
        raise ValueError("a and b must share at least one parameter name and shape, got none")
    return max(diffs)


# ---------------------------------------------------------------------------------------------------------------
# Measuring: perplexity, speed, the table
# ---------------------------------------------------------------------------------------------------------------

EVAL_TEXT = Path(__file__).parent / "data" / "ch04_eval_text.txt"
ROW_NAMES = ("fp32", "bf16", "int8 (own)", "int4 g128 (own)", "int4 g32 (own)", "int4 g128 affine (own)",
             "int4 g32 affine (own)", "int8 (bitsandbytes)", "nf4 (bitsandbytes)", "q4_1 (gguf)")
SAMPLE_PROMPT = "Explain in two sentences why the sky is blue."


def eval_text() -> str:
    """The chapter's evaluation text (original prose written for llmlab)."""
    return EVAL_TEXT.read_text(encoding="utf-8")


@torch.inference_mode()
def timed_sample(model, tokenizer, prompt: str = SAMPLE_PROMPT, new_tokens: int = 24) -> tuple[str, float]:
    """Greedy reply of exactly `new_tokens` tokens to a chat prompt, and tokens/s (after a 2-token warm-up)."""
    if not isinstance(new_tokens, int) or new_tokens < 1:
        raise ValueError(f"new_tokens must be an int >= 1, got {new_tokens!r}")
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(next(model.parameters()).device)
    settings = dict(do_sample=False, pad_token_id=pad_token_id(tokenizer))
    model.generate(**inputs, max_new_tokens=2, **settings)
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **settings)
    seconds = time.perf_counter() - start
    new = out[0, inputs["input_ids"].shape[1]:]
    return tokenizer.decode(new, skip_special_tokens=True).strip(), new.numel() / seconds


@dataclass
class Row:
    """One line of the memory/quality table; values are None when the row was skipped (see note)."""

    name: str
    memory_bytes: int | None
    perplexity: float | None
    tokens_per_second: float | None
    sample: str | None
    note: str = ""


def build_variant(row: str, base, name: str = models.DEFAULT_MODEL, gguf_path: str | Path | None = None):
    """The model for one table row, built from the fp32 `base` (copied, never changed); also returns a note."""
    if row not in ROW_NAMES:
        raise ValueError(f"row must be one of {list(ROW_NAMES)}, got {row!r}")
    if row == "fp32":
        return base, ""
    if row == "bf16":
        return copy.deepcopy(base).to(torch.bfloat16), "bf16 weights and compute"
    if row == "int8 (own)":
        return quantize_model(copy.deepcopy(base), 8), "absmax per row, fp16 scales; lm_head/embeddings fp32"
    if row.startswith("int4"):
        g = 128 if "g128" in row else 32
        if "affine" in row:
            return (quantize_model(copy.deepcopy(base), 4, g, scheme="affine"),
                    f"affine (scale + min) groups of {g}, fp16 scales and mins; embeddings fp32")
        return quantize_model(copy.deepcopy(base), 4, g), f"absmax groups of {g}, fp16 scales; embeddings fp32"
    if row == "int8 (bitsandbytes)":
        return load_bnb(8, name, base.device), "LLM.int8(), threshold 6.0"
    if row == "nf4 (bitsandbytes)":
        return load_bnb(4, name, base.device), "NF4 blocks of 64, fp32 compute"
    if gguf_path is None:
        raise ValueError("gguf_path must be given for the 'q4_1 (gguf)' row, got None")
    model, types, stored = load_gguf(gguf_path, name)
    diff = max_weight_difference(model, base)
    note = (f"memory = tensor bytes stored in the GGUF ({', '.join(f'{k}×{v}' for k, v in sorted(types.items()))}); "
            f"run as fp32 after dequantizing; max |w - cached fp32 w| = {diff:.2g}")
    model.llmlab_stored_bytes = stored
    return model.to(base.device), note


def measure_row(row: str, base, tokenizer, text: str, window: int = 512, max_tokens: int | None = None,
                prompt: str = SAMPLE_PROMPT, new_tokens: int = 24, name: str = models.DEFAULT_MODEL,
                gguf_path: str | Path | None = None) -> Row:
    """Memory, perplexity on text, tokens/s and a greedy sample for one row; a failure gives a skipped Row."""
    try:
        model, note = build_variant(row, base, name, gguf_path)
    except Exception as exc:  # noqa: BLE001 - an unavailable backend is reported in the table, not raised
        return Row(row, None, None, None, None, f"skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    with _quiet_bitsandbytes():
        memory = getattr(model, "llmlab_stored_bytes", None) or memory_footprint(model)
        ppl = perplexity(model, tokenizer, text, window, max_tokens)
        sample, speed = timed_sample(model, tokenizer, prompt, new_tokens)
    return Row(row, memory, ppl, speed, sample, note)


def measure_table(rows: Sequence[str] = ROW_NAMES, text: str | None = None, window: int = 512,
                  max_tokens: int | None = None, prompt: str = SAMPLE_PROMPT, new_tokens: int = 24,
                  name: str = models.DEFAULT_MODEL, gguf_path: str | Path | None = None,
                  base=None) -> list[Row]:
    """The chapter's memory/perplexity/speed/sample table, one Row per requested row, measured in one run.

    `base` is an already loaded (fp32 model, tokenizer) to reuse; `text` defaults to the shipped evaluation text.
    """
    unknown = [r for r in rows if r not in ROW_NAMES]
    if unknown or not rows:
        raise ValueError(f"rows must be a non-empty subset of {list(ROW_NAMES)}, got {list(rows)!r}")
    model, tokenizer = base if base is not None else models.load(name, dtype=torch.float32)
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError(f"base must be an fp32 model, got {next(model.parameters()).dtype}")
    text = eval_text() if text is None else text
    torch.manual_seed(0)
    return [measure_row(r, model, tokenizer, text, window, max_tokens, prompt, new_tokens, name, gguf_path)
            for r in rows]


TARGETS = (("int8 (own)", "fp32", 0.02), ("int8 (bitsandbytes)", "fp32", 0.02),
           ("nf4 (bitsandbytes)", "fp32", 0.10), ("int4 g128 (own)", "fp32", 0.15),
           ("int4 g128 affine (own)", "fp32", 0.15))


def check_targets(rows: Sequence[Row]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the chapter's perplexity targets; met is None when a row is missing."""
    ppl = {r.name: r.perplexity for r in rows}
    out: list[tuple[str, str, bool | None]] = []
    for row, ref, limit in TARGETS:
        target = f"{row} ppl ≤ {ref} × {1 + limit:.2f}"
        if ppl.get(row) is None or ppl.get(ref) is None:
            out.append((target, "not measured", None))
            continue
        change = ppl[row] / ppl[ref] - 1
        out.append((target, f"{ppl[row]:.3f} vs {ppl[ref]:.3f} ({change:+.2%})", change <= limit))
    own, bnb = ppl.get("int8 (own)"), ppl.get("int8 (bitsandbytes)")
    target = "|int8 (own) ppl - int8 (bitsandbytes) ppl| ≤ 0.1"
    if own is None or bnb is None:
        out.append((target, "not measured", None))
    else:
        out.append((target, f"{own:.3f} vs {bnb:.3f} (difference {own - bnb:+.3f})", abs(own - bnb) <= 0.1))
    return out


def table_markdown(rows: Sequence[Row], sample_chars: int = 70) -> str:
    """The table as Markdown: memory (MB), perplexity, tokens/s, sample (cut to sample_chars), note."""
    lines = ["| variant | memory (MB) | perplexity | tokens/s | sample | note |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        def fmt(value, spec):
            return "—" if value is None else format(value, spec)
        sample = "—" if r.sample is None else r.sample.replace("\n", " ").replace("|", "/")
        sample = sample if len(sample) <= sample_chars else sample[: sample_chars - 1] + "…"
        mem = None if r.memory_bytes is None else r.memory_bytes / 1e6
        lines.append(f"| {r.name} | {fmt(mem, '.0f')} | {fmt(r.perplexity, '.3f')} | "
                     f"{fmt(r.tokens_per_second, '.1f')} | {sample} | {r.note} |")
    return "\n".join(lines)
