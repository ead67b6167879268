"""Tests for llmlab.longcontext: window masks against a loop and transformers, the windowed forward, RoPE scaling."""

import pytest
import torch

from llmlab import attention
from llmlab import longcontext as lc
from llmlab.scaling import tiny


@pytest.mark.parametrize("seq,window,sinks", [(9, 3, 0), (9, 3, 2), (6, 1, 0), (6, 1, 1), (5, 8, 2), (7, 7, 0)])
def test_mask_matches_loop(seq, window, sinks):
    assert torch.equal(lc.sliding_window_mask(seq, window, sinks), lc.sliding_window_mask_loop(seq, window, sinks))


def test_mask_matches_transformers_sliding_window_without_sinks():
    from transformers.masking_utils import and_masks, causal_mask_function, sliding_window_overlay

    fn = and_masks(causal_mask_function, sliding_window_overlay(3))
    i, j = torch.arange(8)[:, None], torch.arange(8)[None, :]
    ref = fn(torch.tensor(0), torch.tensor(0), i, j)
    assert torch.equal(lc.sliding_window_mask(8, 3), ref)


def test_mask_edges():
    m = lc.sliding_window_mask(6, 2, 1)
    assert m[5].tolist() == [True, False, False, False, True, True]
    assert m[0].tolist() == [True, False, False, False, False, False]
    assert lc.sliding_window_mask(2, 1, 0, past_len=3).tolist() == [[False] * 3 + [True, False],
                                                                     [False] * 4 + [True]]


def test_bad_window_and_long_context():
    with pytest.raises(ValueError, match=r"window must be an int in \[1, inf\), got 0"):
        lc.sliding_window_mask(4, 0)
    w = tiny.tiny_weights(tiny.TinySpec(layers=1, hidden=16, heads=2, kv_heads=1, inner=16, max_positions=8))
    with pytest.raises(ValueError, match=r"sequence length must be <= 8.*got 9"):
        lc.windowed_forward(w, torch.zeros(1, 9, dtype=torch.long), 4)


def test_windowed_forward_equals_kit_forward_when_window_covers_sequence():
    w = tiny.tiny_weights(tiny.TinySpec(layers=2, hidden=32, heads=4, kv_heads=2, inner=48, max_positions=32))
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = attention.forward(w, ids)
        assert torch.allclose(lc.windowed_forward(w, ids, 12), full, atol=1e-5)
        assert torch.allclose(lc.windowed_forward(w, ids, 4)[:, :4], full[:, :4], atol=1e-5)
        assert not torch.allclose(lc.windowed_forward(w, ids, 4)[:, 8:], full[:, 8:], atol=1e-3)


def test_kv_bytes_with_window():
    w = tiny.tiny_weights(tiny.TinySpec(layers=2, hidden=32, heads=4, kv_heads=2, inner=48, max_positions=32))
    per_pos = 2 * 2 * 2 * 8 * 2
    assert lc.kv_bytes(w, 100) == 100 * per_pos
    assert lc.kv_bytes(w, 100, window=16, sinks=4) == 20 * per_pos


def _config(rope):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=256,
                       rope_parameters={"rope_theta": 10000.0, **rope})


def test_rope_variants_match_transformers():
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inv, _ = ROPE_INIT_FUNCTIONS["linear"](_config({"rope_type": "linear", "factor": 4.0}), "cpu")
    assert torch.allclose(lc.pi_inv_freq(16, 10000.0, 4.0), inv)
    # transformers' dynamic NTK at seq_len L uses the factor (f·L/max - (f-1)); L = 384, f = 2 gives 2
    inv, _ = ROPE_INIT_FUNCTIONS["dynamic"](_config({"rope_type": "dynamic", "factor": 2.0}), "cpu", seq_len=384)
    assert torch.allclose(lc.ntk_inv_freq(16, 10000.0, 2.0), inv, rtol=1e-5)
    cfg = _config({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64})
    inv, mscale = ROPE_INIT_FUNCTIONS["yarn"](cfg, "cpu")
    ours, our_mscale = lc.yarn_inv_freq(16, 10000.0, 4.0, 64)
    assert torch.allclose(ours, inv, rtol=1e-5) and our_mscale == pytest.approx(mscale)


def test_ntk_keeps_fastest_and_slows_slowest_by_factor():
    base, ntk = lc.default_inv_freq(16), lc.ntk_inv_freq(16, 10000.0, 4.0)
    assert ntk[0].item() == pytest.approx(base[0].item())
    assert ntk[-1].item() == pytest.approx(base[-1].item() / 4, rel=1e-5)


def test_with_rope_and_loss_by_position():
    w = tiny.tiny_weights(tiny.TinySpec(layers=1, hidden=32, heads=4, kv_heads=2, inner=32, max_positions=16))
    long = lc.with_rope(w, "yarn", 2.0, 16, 32)
    assert long.max_positions == 32 and long.embed is w.embed
    assert torch.allclose(lc.with_rope(w, "default", 1.0, 16, 16).cos, w.cos, atol=1e-6)
    loss = lc.loss_by_position(long, tiny.byte_tokens(tiny.corpus_text()[:2000]), 24, windows=2)
    assert loss.shape == (24,) and torch.isfinite(loss).all()
