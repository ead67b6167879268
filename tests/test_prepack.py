"""Prepacked bf16 weights: the same products as F.linear, bit for bit, and never a stale copy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmlab import attention, prepack
from llmlab.kit import fixtures

needs_amx = pytest.mark.skipif(not prepack.supported(torch.zeros(2, 2, dtype=torch.bfloat16)),
                               reason="prepacking needs a CPU with AMX and oneDNN bf16")


@needs_amx
@pytest.mark.parametrize("shape", [(960, 576), (3072, 576), (576, 1536), (49152, 576)])  # SmolLM2's matrices
def test_packed_products_equal_f_linear_bit_for_bit_up_to_max_rows(shape):
    g = torch.Generator().manual_seed(0)
    weight = prepack.pack(torch.randn(shape, generator=g).to(torch.bfloat16))
    assert prepack.is_packed(weight)
    for rows in (1, 2, 5, prepack.MAX_ROWS):
        x = torch.randn(1, rows, shape[1], generator=g).to(torch.bfloat16)
        assert torch.equal(prepack.linear(x, weight), F.linear(x, weight)), rows


@needs_amx
def test_long_inputs_and_other_dtypes_take_the_plain_path():
    weight = prepack.pack(torch.randn(64, 32).to(torch.bfloat16))
    x = torch.randn(3, 40, 32).to(torch.bfloat16)  # 120 rows: a prefill
    assert torch.equal(prepack.linear(x, weight), F.linear(x, weight))
    fp32 = torch.randn(64, 32)
    assert prepack.pack(fp32) is fp32 and not prepack.is_packed(fp32)
    x32 = torch.randn(2, 32)
    assert torch.equal(prepack.linear(x32, fp32), F.linear(x32, fp32))


@needs_amx
def test_an_in_place_edit_makes_the_packed_copy_unused():
    weight = prepack.pack(torch.randn(16, 8).to(torch.bfloat16))
    x = torch.randn(1, 8).to(torch.bfloat16)
    weight.mul_(2)
    assert not prepack.is_packed(weight)
    assert torch.equal(prepack.linear(x, weight), F.linear(x, weight))


@needs_amx
def test_the_bf16_decode_layout_packs_every_matrix_of_a_model():
    model = fixtures.tiny_model(seed=0).to(torch.bfloat16)
    with torch.inference_mode():
        w = attention.from_model(model)
    for layer in w.layers:
        assert all(prepack.is_packed(t) for t in (layer.wqkv, layer.wo, layer.wgate_up, layer.wdown))
    assert prepack.is_packed(w.lm_head)


def test_without_a_packed_copy_linear_is_f_linear():
    x, weight = torch.randn(4, 6), torch.randn(5, 6)
    assert not prepack.is_packed(weight)
    assert torch.equal(prepack.linear(x, weight), F.linear(x, weight))
    assert not prepack.supported(torch.randn(5, 6))  # fp32 is never packed
    assert not prepack.supported(torch.randn(5, 6, 2).to(torch.bfloat16))  # nor anything but a matrix
