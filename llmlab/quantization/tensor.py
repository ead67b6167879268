"""Tensor quantizers: absmax (symmetric), zero-point (integer offset) and min/scale (the kit's "affine"),
dequantization, int4 packing."""

from __future__ import annotations

from typing import Sequence

import torch

from llmlab import validate as V

GRANULARITIES = ("tensor", "channel", "group")


def valid_bits(bits, allowed: Sequence[int] = range(2, 9)) -> int:
    """bits if it is an int (else TypeError) among `allowed` (else ValueError naming the allowed widths)."""
    V.integer("bits", bits)
    return V.one_of("bits", bits, allowed)


def _grouped(x: torch.Tensor, granularity: str, group_size: int | None) -> torch.Tensor:
    """View x as (..., n_groups, group) along its last dimension ('tensor': one group of everything)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
    if granularity == "tensor":
        return x.reshape(1, -1)
    if granularity == "channel":
        return x.reshape(*x.shape[:-1], 1, x.shape[-1])
    if group_size is not None:
        V.integer("group_size", group_size)  # TypeError for a non-int
    if group_size is None or group_size < 1:
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

    >>> q, scale = absmax_quantize(torch.tensor([-1.27, 0.5, 1.27]))
    >>> q.tolist(), round(scale.item(), 4)
    ([-127, 50, 127], 0.01)
    """
    V.finite("x", V.float_tensor("x", x))
    valid_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    g = _grouped(x.float(), granularity, group_size)
    scale = g.abs().amax(-1) / qmax
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(g / scale[..., None]).clamp(-qmax, qmax).to(torch.int8).reshape(x.shape)
    return q, _scale_shape(scale, granularity)


def zeropoint_quantize(x: torch.Tensor, bits: int = 8, granularity: str = "tensor",
                       group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-point quantization: uint8 codes q in [0, 2**bits-1], scales and integer zero points, x ≈ (q - zp) * scale.

    The range [min, max] is widened to include 0, so that 0 is represented exactly.

    >>> q, scale, zp = zeropoint_quantize(torch.tensor([0.0, 1.0, 2.55]))
    >>> q.tolist(), round(scale.item(), 4), zp.item()
    ([0, 100, 255], 0.01, 0)
    """
    V.finite("x", V.float_tensor("x", x))
    valid_bits(bits)
    levels = 2 ** bits - 1
    g = _grouped(x.float(), granularity, group_size)
    lo = g.amin(-1).clamp(max=0.0)
    hi = g.amax(-1).clamp(min=0.0)
    scale = (hi - lo) / levels
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero_point = torch.round(-lo / scale).clamp(0, levels)
    q = (torch.round(g / scale[..., None]) + zero_point[..., None]).clamp(0, levels).to(torch.uint8)
    return q.reshape(x.shape), _scale_shape(scale, granularity), _scale_shape(zero_point.to(torch.int32), granularity)


def minmax_quantize(x: torch.Tensor, bits: int = 4, granularity: str = "group",
                    group_size: int | None = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Min/scale quantization, the kit's "affine" (GGUF's Q4_1 at 4 bits, groups of 32): uint8 codes q in
    [0, 2**bits-1], scales and float group minimums with x ≈ q * scale + low. Unlike zero-point, 0 need not be exact.
    """
    V.finite("x", V.float_tensor("x", x))
    valid_bits(bits)
    levels = 2 ** bits - 1
    g = _grouped(x.float(), granularity, group_size)
    low = g.amin(-1)
    scale = (g.amax(-1) - low) / levels
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round((g - low[..., None]) / scale[..., None]).clamp(0, levels).to(torch.uint8)
    return q.reshape(x.shape), _scale_shape(scale, granularity), _scale_shape(low, granularity)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None = None,
               low: torch.Tensor | None = None) -> torch.Tensor:
    """Float32 values from integer codes: q * scale, (q - zero_point) * scale or q * scale + low (min/scale codes);
    scales, zero points and lows shaped as the quantizers return them.

    >>> [round(v, 4) for v in dequantize(torch.tensor([-127, 50, 127], dtype=torch.int8), torch.tensor(0.01)).tolist()]
    [-1.27, 0.5, 1.27]
    """
    if not isinstance(q, torch.Tensor) or q.is_floating_point() or q.dtype == torch.bool:
        raise TypeError(f"q must be an integer torch.Tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    V.float_tensor("scale", scale)
    if scale.dim() == 0:
        groups = q.float().reshape(1, -1)
        scale_g = scale.reshape(1)
    else:
        if scale.shape[:-1] != q.shape[:-1] or q.shape[-1] % scale.shape[-1]:
            raise ValueError(f"scale must have shape () or (..., n_groups) matching q {tuple(q.shape)}, "
                             f"got {tuple(scale.shape)}")
        groups = q.float().reshape(*q.shape[:-1], scale.shape[-1], q.shape[-1] // scale.shape[-1])
        scale_g = scale
    if zero_point is not None and low is not None:
        raise ValueError("give zero_point (zero-point codes) or low (min/scale codes), not both")
    if zero_point is not None:
        V.tensor("zero_point", zero_point)  # TypeError for a non-tensor
        if zero_point.shape != scale.shape:
            raise ValueError(f"zero_point must be a tensor shaped like scale {tuple(scale.shape)}, got "
                             f"{tuple(zero_point.shape) if isinstance(zero_point, torch.Tensor) else zero_point!r}")
        groups = groups - zero_point.reshape(scale_g.shape).float()[..., None]
    values = groups * scale_g.float()[..., None]
    if low is not None:
        V.float_tensor("low", low)
        if low.shape != scale.shape:
            raise ValueError(f"low must be a tensor shaped like scale {tuple(scale.shape)}, got {tuple(low.shape)}")
        values = values + low.reshape(scale_g.shape).float()[..., None]
    return values.reshape(q.shape)


def quantize_dequantize(x: torch.Tensor, method: str = "absmax", bits: int = 8, granularity: str = "tensor",
                        group_size: int | None = None) -> torch.Tensor:
    """Round trip x through a quantizer ('absmax', 'zeropoint' or 'nf4' with blocks of group_size, default 64)."""
    if method == "absmax":
        return dequantize(*absmax_quantize(x, bits, granularity, group_size)).reshape(x.shape)
    if method == "zeropoint":
        return dequantize(*zeropoint_quantize(x, bits, granularity, group_size)).reshape(x.shape)
    if method == "nf4":
        from llmlab.quantization.nf4 import nf4_dequantize, nf4_quantize

        return nf4_dequantize(*nf4_quantize(x, group_size or 64))
    raise ValueError(f"method must be one of ['absmax', 'zeropoint', 'nf4'], got {method!r}")


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Two signed 4-bit codes in [-8, 7] per uint8 byte along the last dimension (which must be even).

    >>> pack_int4(torch.tensor([1, -2, 7, -8], dtype=torch.int8)).tolist()
    [105, 15]
    """
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        raise TypeError(f"q must be an int8 torch.Tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    if q.shape[-1] % 2:
        raise ValueError(f"q's last dimension must be even to pack two codes per byte, got {q.shape[-1]}")
    if q.numel() and (q.min() < -8 or q.max() > 7):
        raise ValueError(f"q must hold 4-bit codes in [-8, 7], got range [{int(q.min())}, {int(q.max())}]")
    u = (q.to(torch.int16) + 8).to(torch.uint8)
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    """The int8 codes in [-8, 7] stored by pack_int4: (..., n) bytes -> (..., 2n) codes.

    >>> unpack_int4(pack_int4(torch.tensor([1, -2, 7, -8], dtype=torch.int8))).tolist()
    [1, -2, 7, -8]
    """
    if not isinstance(packed, torch.Tensor) or packed.dtype != torch.uint8:
        raise TypeError(f"packed must be a uint8 torch.Tensor, got {getattr(packed, 'dtype', type(packed).__name__)}")
    out = torch.empty(*packed.shape[:-1], packed.shape[-1] * 2, dtype=torch.int8, device=packed.device)
    out[..., 0::2] = packed & 0x0F
    out[..., 1::2] = packed >> 4
    return out.sub_(8)
