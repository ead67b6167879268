"""Checks for chapter 04 (quantization) exercises."""

from __future__ import annotations

import torch

from llmlab import memory
from llmlab import quantization as Q
from llmlab.checks import Check


def _inputs() -> list[tuple[str, torch.Tensor]]:
    """Small named test tensors: Gaussian, one outlier, all positive, a 2-d block."""
    gen = torch.Generator().manual_seed(4)
    outlier = torch.randn(12, generator=gen)
    outlier[3] = -9.0
    return [("gaussian (10,)", torch.randn(10, generator=gen)), ("with an outlier (12,)", outlier),
            ("all positive (8,)", torch.rand(8, generator=gen) + 0.5),
            ("matrix (3, 8)", torch.randn(3, 8, generator=gen))]


def _tensor_result(c: Check, got, n: int, case: str) -> tuple:
    """Fail unless got is a tuple of n tensors."""
    c.that(isinstance(got, tuple) and len(got) == n and all(isinstance(t, torch.Tensor) for t in got), case,
           f"expected a tuple of {n} tensors, got {type(got).__name__}"
           + (f" of length {len(got)}" if isinstance(got, tuple) else ""))
    return got


def check_absmax(absmax_quantize, absmax_dequantize) -> None:
    """Exercise 04.1: absmax_quantize(x, bits) -> (q int8, scale) with x ≈ q * scale; absmax_dequantize(q, scale)."""
    with Check("Exercise 04.1 absmax quantize/dequantize") as c:
        for bits in (8, 4):
            for label, x in _inputs():
                case = f"{label}, bits={bits}"
                q, scale = _tensor_result(c, c.call(absmax_quantize, x.clone(), bits, case=case), 2, case)
                want_q, want_scale = Q.absmax_quantize(x, bits)
                c.that(q.dtype == torch.int8, case, f"q must have dtype torch.int8, got {q.dtype}")
                c.that(tuple(q.shape) == tuple(x.shape), case, f"q must have x's shape {tuple(x.shape)}, "
                                                               f"got {tuple(q.shape)}")
                c.that(scale.numel() == 1, case,
                       f"absmax here uses ONE scale for the whole tensor (per-tensor), got a scale of shape "
                       f"{tuple(scale.shape)}: take max|x| over all values, not per row")
                c.close(scale.reshape(()), want_scale, case=case + " (scale = max|x| / (2**(bits-1) - 1))")
                c.close(q, want_q, case=case + " (codes q = round(x / scale))", atol=0, rtol=0)
                back = c.call(absmax_dequantize, q, scale, case=case + " dequantize")
                c.close(back, Q.dequantize(want_q, want_scale), case=case + " (dequantized)")


def check_zeropoint(zeropoint_quantize) -> None:
    """Exercise 04.2: zeropoint_quantize(x, bits) -> (q uint8 in [0, 2**bits-1], scale, zero_point)."""
    with Check("Exercise 04.2 zero-point quantize") as c:
        for bits in (8, 4):
            levels = 2 ** bits - 1
            # min/scale = -3.5 and max/scale = levels - 3.5 are exact rounding ties: both round up (to even),
            # so round(max/scale) + zero_point = levels + 1, which only the final clamp keeps in range.
            tie = ("a rounding tie at the top of the range (6,)",
                   torch.tensor([-3.5, -1.25, 0.0, 2.0, levels - 5.0, levels - 3.5]) * 0.5)
            for label, x in _inputs() + [tie]:
                case = f"{label}, bits={bits}"
                q, scale, zp = _tensor_result(c, c.call(zeropoint_quantize, x.clone(), bits, case=case), 3, case)
                want_q, want_scale, want_zp = Q.zeropoint_quantize(x, bits)
                c.that(q.dtype == torch.uint8, case, f"q must have dtype torch.uint8, got {q.dtype}")
                c.that(scale.numel() == 1 and zp.numel() == 1, case,
                       f"use one scale and one zero point for the whole tensor, got shapes {tuple(scale.shape)} "
                       f"and {tuple(zp.shape)}")
                c.close(scale.reshape(()), want_scale, case=case + " (scale = (max - min) / (2**bits - 1))")
                c.close(zp.reshape(()).float(), float(want_zp), case=case + " (zero point = round(-min / scale))",
                        atol=0, rtol=0)
                c.close(q, want_q, case=case + " (codes q = clamp(round(x / scale) + zero_point))", atol=0, rtol=0)


def check_groupwise(groupwise_quantize) -> None:
    """Exercise 04.3: groupwise_quantize(x, group_size, bits) -> (q, scales of shape (rows, cols // group_size))."""
    gen = torch.Generator().manual_seed(5)
    with Check("Exercise 04.3 group-wise absmax") as c:
        for rows, cols, group, bits in [(2, 8, 4, 8), (3, 12, 4, 4), (4, 16, 8, 4), (2, 6, 6, 8)]:
            x = torch.randn(rows, cols, generator=gen)
            x[0, 1] = 7.0  # an outlier that should only affect its own group
            case = f"x {(rows, cols)}, group_size={group}, bits={bits}"
            q, scales = _tensor_result(c, c.call(groupwise_quantize, x.clone(), group, bits, case=case), 2, case)
            want_q, want_scales = Q.absmax_quantize(x, bits, "group", group)
            c.that(q.dtype == torch.int8, case, f"q must have dtype torch.int8, got {q.dtype}")
            c.that(tuple(scales.shape) == tuple(want_scales.shape), case,
                   f"scales must have shape (rows, cols // group_size) = {tuple(want_scales.shape)}, "
                   f"got {tuple(scales.shape)}")
            c.that(tuple(q.shape) == tuple(x.shape), case, f"q must have x's shape {tuple(x.shape)}, "
                                                           f"got {tuple(q.shape)}")
            c.close(scales, want_scales, case=case + " (one scale per group of consecutive values in a row)")
            c.close(q, want_q, case=case + " (codes)", atol=0, rtol=0)


def check_nf4_nearest(nf4_nearest) -> None:
    """Exercise 04.4: nf4_nearest(x) -> index (0..15) of the nearest NF4 level for each value in [-1, 1]."""
    gen = torch.Generator().manual_seed(6)
    with Check("Exercise 04.4 NF4 nearest level") as c:
        for case, x in [("the levels themselves", Q.NF4_CODEBOOK.clone()),
                        ("values between levels", torch.tensor([-0.9, -0.45, -0.1, 0.04, 0.3, 0.65, 0.9])),
                        ("random in [-1, 1] (5, 7)", torch.rand(5, 7, generator=gen) * 2 - 1)]:
            got = c.call(nf4_nearest, x.clone(), case=case)
            c.that(isinstance(got, torch.Tensor) and not got.is_floating_point(), case,
                   f"expected integer indices, got {getattr(got, 'dtype', type(got).__name__)}")
            c.close(got, Q.nf4_nearest(x), case=case, atol=0, rtol=0)


def check_model_memory_gb(model_memory_gb) -> None:
    """Exercise 04.5: model_memory_gb(n_params, bits, group_size=None, scale_bits=16) in GB (1e9 bytes)."""
    with Check("Exercise 04.5 model memory estimate") as c:
        for args in [(7e9, 16), (7e9, 8), (70e9, 1.58), (135e6, 32), (8e9, 4, 32), (8e9, 4, 128, 32)]:
            case = f"model_memory_gb{args}"
            got = c.call(model_memory_gb, *args, case=case)
            c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
                   f"return a Python float (GB), got {type(got).__name__}")
            n_params, bits, *rest = args
            c.close(got, memory.weights_gb(n_params / 1e9, bits, *rest), case=case, rtol=1e-6)
