"""Check-can-fail tests for chapter 04's exercise checks."""

import pytest
import torch
from checks_harness import CheckCase, make_tests

from llmlab import memory
from llmlab import quantization as Q
from llmlab.checks import CheckFailed, ch04


def absmax_truncating(x, bits):
    scale = x.abs().max() / (2 ** (bits - 1) - 1)
    return (x / scale).to(torch.int8), scale  # .to(int8) truncates toward zero instead of rounding


def absmax_signed_max(x, bits):
    scale = x.max() / (2 ** (bits - 1) - 1)  # forgets abs(): the negative side overflows
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


def absmax_qmax_power_of_two(x, bits):
    scale = x.abs().max() / 2 ** (bits - 1)  # 128 levels instead of 127
    return torch.round(x / scale).clamp(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).to(torch.int8), scale


def dequantize_divides(q, scale):
    return q.float() / scale


def zeropoint_256_levels(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / 2 ** bits  # off by one: 2**bits levels span 2**bits - 1 steps
    zp = torch.round(-lo / scale)
    return (torch.round(x / scale) + zp).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp


def zeropoint_without_zero_in_range(x, bits):
    lo, hi = x.min(), x.max()  # all-positive data: 0 is no longer exactly representable
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.round(-lo / scale)
    return (torch.round(x / scale) + zp).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp


def zeropoint_unrounded_zero_point(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = -lo / scale
    return torch.round(x / scale + zp).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp


def zeropoint_without_clamp(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.round(-lo / scale)
    return (torch.round(x / scale) + zp).to(torch.uint8), scale, zp  # a tie at the top gives 2**bits: wraps to 0


def zeropoint_clamp_before_adding(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.round(-lo / scale)
    return (torch.round(x / scale).clamp(-zp, 2 ** bits - 1) + zp).to(torch.uint8), scale, zp


def zeropoint_shift_then_round(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.round(-lo / scale)
    return torch.round((x - lo) / scale).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp  # the offset unrounded


def zeropoint_truncated_zero_point(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.floor(-lo / scale)
    return (torch.round(x / scale) + zp).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp


def zeropoint_clamp_after_cast(x, bits):
    q, scale, zp = zeropoint_without_clamp(x, bits)
    return q.clamp(0, 2 ** bits - 1), scale, zp  # too late: 256 already wrapped to 0 in uint8


def zeropoint_round_once(x, bits):
    """A correct alternative: the zero point added before one rounding, and a float zero point."""
    levels = 2 ** bits - 1
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = torch.tensor((hi - lo) / levels)
    zp = torch.round(-lo / scale)
    return torch.clamp(torch.round(x / scale + zp), 0, levels).to(torch.uint8), scale, zp


def test_zeropoint_check_passes_a_correct_alternative(capsys):
    ch04.check_zeropoint(zeropoint_round_once)
    assert "✔" in capsys.readouterr().out


def groupwise_one_scale_per_row(x, group_size, bits):
    q, scale = Q.absmax_quantize(x, bits, "channel")
    return q, scale.expand(x.shape[0], x.shape[1] // group_size)


def groupwise_strided_groups(x, group_size, bits):
    n = x.shape[1] // group_size
    g = x.reshape(x.shape[0], group_size, n).transpose(1, 2)  # groups of every n-th value, not consecutive ones
    scale = g.abs().amax(-1) / (2 ** (bits - 1) - 1)
    q = torch.round(g / scale[..., None]).transpose(1, 2).reshape(x.shape).to(torch.int8)
    return q, scale


def nf4_uniform_grid(x):
    return torch.round((x + 1) * 7.5).long()  # 16 evenly spaced levels, not the normal quantiles


def nf4_signed_distance(x):
    return (x[..., None] - Q.NF4_CODEBOOK).argmin(-1)  # forgets abs(): always picks the top level


def memory_gib(n_params, bits, group_size=None, scale_bits=16):
    return n_params * (bits + (scale_bits / group_size if group_size else 0)) / 8 / 1024 ** 3


def memory_bits_not_bytes(n_params, bits, group_size=None, scale_bits=16):
    return n_params * (bits + (scale_bits / group_size if group_size else 0)) / 1e9


def memory_without_scales(n_params, bits, group_size=None, scale_bits=16):
    return n_params * bits / 8 / 1e9


def model_memory_gb(n_params, bits, group_size=None, scale_bits=16):
    """The exercise's signature (a raw parameter count) over the package's one definition."""
    return memory.weights_gb(n_params / 1e9, bits, group_size, scale_bits)


def absmax_per_row_scale(x, bits):
    if x.dim() < 2:
        return Q.absmax_quantize(x, bits)
    scale = x.abs().amax(-1, keepdim=True) / (2 ** (bits - 1) - 1)
    return torch.round(x / scale).to(torch.int8), scale


def absmax_float_codes(x, bits):
    q, scale = Q.absmax_quantize(x, bits)
    return q.float(), scale


def absmax_returns_list(x, bits):
    return list(Q.absmax_quantize(x, bits))


def absmax_always_8_bits(x, bits):
    return Q.absmax_quantize(x, 8)


def zeropoint_int8_codes(x, bits):
    q, scale, zp = Q.zeropoint_quantize(x, bits)
    return q.to(torch.int8), scale, zp


def zeropoint_negative_zero_point(x, bits):
    lo, hi = min(x.min(), 0), max(x.max(), 0)
    scale = (hi - lo) / (2 ** bits - 1)
    zp = torch.round(lo / scale)
    return (torch.round(x / scale) + zp).clamp(0, 2 ** bits - 1).to(torch.uint8), scale, zp


def groupwise_float_codes(x, group_size, bits):
    q, scales = Q.absmax_quantize(x, bits, "group", group_size)
    return q.float(), scales


def groupwise_flat_scales(x, group_size, bits):
    q, scales = Q.absmax_quantize(x, bits, "group", group_size)
    return q, scales.flatten()


def groupwise_returns_list(x, group_size, bits):
    return list(Q.absmax_quantize(x, bits, "group", group_size))


def groupwise_one_scale_per_column_block(x, group_size, bits):
    g = x.reshape(x.shape[0] // 1, -1, group_size)
    scale = g.abs().amax(dim=(0, 2)) / (2 ** (bits - 1) - 1)
    q = torch.round(g / scale[None, :, None]).reshape(x.shape).to(torch.int8)
    return q, scale.expand(x.shape[0], -1)


def nf4_returns_levels(x):
    return Q.NF4_CODEBOOK[Q.nf4_nearest(x)]


def nf4_next_level_up(x):
    return torch.searchsorted(Q.NF4_CODEBOOK, x.contiguous()).clamp(max=15)


def nf4_rescales(x):
    return Q.nf4_nearest(x / x.abs().max())  # x is already in [-1, 1]: scaling it again moves the codes


def nf4_nearest_below(x):
    return (torch.searchsorted(Q.NF4_CODEBOOK, x.contiguous(), right=True) - 1).clamp(min=0)


def memory_as_tensor(n_params, bits, group_size=None, scale_bits=16):
    return torch.tensor(model_memory_gb(n_params, bits, group_size, scale_bits))  # a 0-d tensor, not a float


def memory_floor_division(n_params, bits, group_size=None, scale_bits=16):
    return n_params * (bits + (scale_bits // group_size if group_size else 0)) / 8 / 1e9


def nf4_as_float_indices(x):
    return Q.nf4_nearest(x).float()


def memory_ignores_scale_bits(n_params, bits, group_size=None, scale_bits=16):
    return n_params * (bits + (16 / group_size if group_size else 0)) / 8 / 1e9


def memory_scale_per_param(n_params, bits, group_size=None, scale_bits=16):
    return n_params * (bits + (scale_bits if group_size else 0)) / 8 / 1e9


CASES = [
    CheckCase(ch04.check_absmax, Q.absmax_quantize,
              [absmax_truncating, absmax_signed_max, absmax_qmax_power_of_two, absmax_per_row_scale,
               absmax_float_codes, absmax_returns_list, absmax_always_8_bits], args=(Q.dequantize,)),
    CheckCase(ch04.check_zeropoint, Q.zeropoint_quantize,
              [zeropoint_256_levels, zeropoint_without_zero_in_range, zeropoint_unrounded_zero_point,
               zeropoint_int8_codes, zeropoint_negative_zero_point, zeropoint_without_clamp,
               zeropoint_clamp_before_adding, zeropoint_shift_then_round, zeropoint_truncated_zero_point,
               zeropoint_clamp_after_cast]),
    CheckCase(ch04.check_groupwise, lambda x, g, bits: Q.absmax_quantize(x, bits, "group", g),
              [groupwise_one_scale_per_row, groupwise_strided_groups, groupwise_float_codes, groupwise_flat_scales,
               groupwise_returns_list, groupwise_one_scale_per_column_block]),
    CheckCase(ch04.check_nf4_nearest, Q.nf4_nearest, [nf4_uniform_grid, nf4_signed_distance, nf4_returns_levels,
                                                           nf4_next_level_up, nf4_as_float_indices, nf4_rescales,
                                                           nf4_nearest_below]),
    CheckCase(ch04.check_model_memory_gb, model_memory_gb,
              [memory_gib, memory_bits_not_bytes, memory_without_scales, memory_ignores_scale_bits,
               memory_scale_per_param, memory_floor_division, memory_as_tensor]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_absmax_check_catches_a_wrong_dequantize():
    with pytest.raises(CheckFailed, match="dequantized"):
        ch04.check_absmax(Q.absmax_quantize, dequantize_divides)


def test_absmax_per_row_scale_gets_a_sentence_not_a_runtime_error():
    with pytest.raises(CheckFailed, match="ONE scale for the whole tensor"):
        ch04.check_absmax(absmax_per_row_scale, Q.dequantize)
