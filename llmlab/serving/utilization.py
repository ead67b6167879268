"""Utilization: model bandwidth utilization (MBU) and model FLOPs utilization (MFU)."""

from __future__ import annotations

from llmlab import validate


def bandwidth_used(params: float, bytes_per_param: float, tokens_per_s: float) -> float:
    """Bytes/s a memory-bound decode reads: every parameter once per generated token (per sequence, batch 1)."""
    validate.number("params", params, 0, low_open=True)
    validate.number("bytes_per_param", bytes_per_param, 0, low_open=True)
    validate.number("tokens_per_s", tokens_per_s, 0)
    return params * bytes_per_param * tokens_per_s


def mbu(params: float, bytes_per_param: float, tokens_per_s: float, bandwidth_gb_s: float) -> float:
    """Model bandwidth utilization, a fraction: params × bytes/param × tokens/s ÷ peak bandwidth (GB/s = 1e9 B/s).

    AI Engineering ch. 9's example, corrected: 7e9 × 2 B × 100 tok/s = 1.4 TB/s (the book prints 700 GB/s),
    which is 70% of an A100's 2 TB/s.
    """
    validate.number("bandwidth_gb_s", bandwidth_gb_s, 0, low_open=True)
    return bandwidth_used(params, bytes_per_param, tokens_per_s) / (bandwidth_gb_s * 1e9)


def step_mbu(weight_bytes: float, kv_bytes: float, tpot: float, bandwidth_gb_s: float) -> float:
    """MBU of one decode step at any batch, a fraction: (weight bytes + KV bytes read) ÷ TPOT ÷ peak bandwidth.

    A step reads every weight once for the whole batch and each sequence's KV cache once; at batch 1 with a short
    context it is `mbu` (params × bytes/param × tokens/s), which counts the weights once per *token* instead.
    """
    validate.number("weight_bytes", weight_bytes, 0, low_open=True)
    validate.number("kv_bytes", kv_bytes, 0)
    validate.number("tpot", tpot, 0, low_open=True)
    validate.number("bandwidth_gb_s", bandwidth_gb_s, 0, low_open=True)
    return (weight_bytes + kv_bytes) / tpot / (bandwidth_gb_s * 1e9)


def flops_per_token(params: float) -> float:
    """Forward FLOPs per token, about 2 × parameters (one multiply and one add per weight; attention left out)."""
    validate.number("params", params, 0, low_open=True)
    return 2 * params


def mfu(params: float, tokens_per_s: float, peak_tflops: float) -> float:
    """Model FLOPs utilization, a fraction: 2 × params × tokens/s ÷ peak FLOP/s (TFLOPS = 1e12 FLOP/s)."""
    validate.number("tokens_per_s", tokens_per_s, 0)
    validate.number("peak_tflops", peak_tflops, 0, low_open=True)
    return flops_per_token(params) * tokens_per_s / (peak_tflops * 1e12)
