"""Memory arithmetic: weights, NF4 bits per weight, training, activations (KV bytes are tested in test_kv_cache)."""

from __future__ import annotations

import pytest

from llmlab import memory


def test_weights_gb_book_numbers_with_group_scales():
    assert memory.weights_gb(7, 16) == 14.0
    assert memory.weights_gb(7, 8) == 7.0
    assert memory.weights_gb(70, 1.58) == pytest.approx(13.825)
    assert memory.weights_gb(1, 4, group_size=32) == pytest.approx(0.5 + 0.0625)


def test_nf4_bits_per_param_is_one_figure_with_its_assumption_stated():
    """The single NF4 bits/parameter figure: 4.5 with fp32 block absmax, ≈4.127 with QLoRA's double quantization."""
    assert memory.nf4_bits_per_param(64, double_quant=False) == 4.5
    assert memory.nf4_bits_per_param(64, double_quant=True) == pytest.approx(4.126953125)


def test_memory_arithmetic_reproduces_the_book():
    assert memory.weights_gb(13, 16) == pytest.approx(26.0)
    assert memory.inference_memory_gb(13, 16) == pytest.approx(31.2)
    parts = memory.training_memory_gb(7, "full", bits=16)
    assert parts["weights"] == pytest.approx(14.0)
    assert parts["gradients"] + parts["optimizer"] == pytest.approx(42.0)
    assert parts["total"] == pytest.approx(56.0)


def test_lora_and_qlora_memory_are_far_smaller():
    full = memory.training_memory_gb(7, "full")["total"]
    lo = memory.training_memory_gb(7, "lora", trainable_billion=0.02)
    q = memory.training_memory_gb(7, "qlora", trainable_billion=0.02)
    assert lo["weights"] == pytest.approx(14.04) and lo["gradients"] == pytest.approx(0.04)
    assert lo["optimizer"] == pytest.approx(0.16)
    assert q["weights"] == pytest.approx(7 * 4.126953125 / 8 + 0.04)
    assert q["total"] < lo["total"] < full / 3
    assert memory.nf4_bits_per_param(64, double_quant=False) == 4.5
    assert memory.training_memory_gb(7, activations_gb=3.0)["total"] == pytest.approx(59.0)


def test_activation_memory_formula():
    # GPT-3 175B-like layer: s=2048, h=12288, a=96, one sequence: 34*s*h + 5*a*s^2 bytes per layer
    per_layer = memory.activation_memory_gb(1, 12288, 96, 2048)
    assert per_layer == pytest.approx((34 * 2048 * 12288 + 5 * 96 * 2048 ** 2) / 1e9)
    expected = 2 * 8 * 3 * 64 * (34 + 5 * 4 * 8 / 64) / 1e9
    assert memory.activation_memory_gb(2, 64, 4, 8, batch=3) == pytest.approx(expected)


@pytest.mark.parametrize("call,message", [
    (lambda: memory.weights_gb(0), r"params_billion must be in \(0, inf\), got 0"),
    (lambda: memory.inference_memory_gb(7, overhead=0.5), r"overhead must be a number >= 1, got 0.5"),
    (lambda: memory.training_memory_gb(7, method="adapter"), r"method must be one of \['full', 'lora', 'qlora'\]"),
    (lambda: memory.training_memory_gb(7, optimizer_states=-1), "optimizer_states must be an int >= 0, got -1"),
    (lambda: memory.training_memory_gb(7, trainable_billion=-1), "trainable_billion must be a number >= 0, got -1"),
    (lambda: memory.activation_memory_gb(0, 8, 2, 4), "num_layers must be an int >= 1, got 0"),
    (lambda: memory.nf4_bits_per_param(0, double_quant=True), r"block_size must be an int in \[1, inf\), got 0"),
    (lambda: memory.nf4_bits_per_param(64), "double_quant"),
    (lambda: memory.weights_gb(7, 0), r"bits must be in \(0, 64\], got 0"),
])
def test_memory_functions_reject_bad_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("call,message", [
    (lambda: memory.weights_gb("7"), "params_billion must be a number, got str '7'"),
    (lambda: memory.weights_gb(True), "params_billion must be a number, got bool True"),
])
def test_wrong_types_raise_type_error(call, message):
    with pytest.raises(TypeError, match=message):
        call()
