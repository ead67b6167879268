"""Tiny decoders trained here: trainable leaves, tied head, loss falls, bad input is named."""

import pytest
import torch

from llmlab import attention
from llmlab.scaling import tiny

SPEC = tiny.TinySpec(layers=1, hidden=32, heads=2, kv_heads=1, inner=64, max_positions=64)


def test_tiny_weights_are_trainable_and_the_head_is_tied():
    w = tiny.tie_head(tiny.tiny_weights(SPEC, seed=1))
    params = tiny.trainable(w)
    assert all(t.requires_grad and t.is_leaf for t in params)
    assert w.lm_head is w.embed and w.embed.shape == (tiny.BYTE_VOCAB, 32)


def test_training_lowers_held_out_loss_and_is_seeded():
    toks = tiny.byte_tokens("the cat sat on the mat. " * 40)
    train, val = tiny.split_tokens(toks, 0.25)
    runs = []
    for _ in range(2):
        w = tiny.tiny_weights(SPEC, seed=0)
        before = tiny.eval_loss(w, val, seq=16, batches=2, batch=4)
        losses = tiny.train(w, train, steps=30, batch=4, seq=16, lr=1e-2)
        runs.append(losses)
        assert tiny.eval_loss(w, val, seq=16, batches=2, batch=4) < before - 1.0
    assert runs[0] == runs[1]


def test_batches_are_shifted_by_one_and_loss_matches_forward():
    toks = torch.arange(50)
    x, y = tiny.batch_at(toks, torch.tensor([0, 7]), 5)
    assert x.tolist()[1] == [7, 8, 9, 10, 11] and y.tolist()[1] == [8, 9, 10, 11, 12]
    w = tiny.tiny_weights(SPEC)
    logits = attention.forward(w, x)
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, tiny.BYTE_VOCAB), y.reshape(-1))
    assert torch.allclose(tiny.lm_loss(w, x, y), want)


def test_bad_input_names_the_parameter():
    w = tiny.tiny_weights(SPEC)
    with pytest.raises(ValueError, match="steps"):
        tiny.train(w, torch.arange(100), steps=0)
    with pytest.raises(ValueError, match="seq"):
        tiny.train(w, torch.arange(100), steps=1, seq=64)
    with pytest.raises(ValueError, match="tokens must hold more"):
        tiny.train(w, torch.arange(10), steps=1, seq=16)
    with pytest.raises(TypeError, match="spec"):
        tiny.tiny_weights({"layers": 1})
    with pytest.raises(ValueError, match="val_fraction"):
        tiny.split_tokens(torch.arange(10), 0.0)
    assert len(tiny.corpus_text()) > 50_000


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    scales = [tiny.lr_scale(s, 100) for s in range(100)]
    assert scales[0] == pytest.approx(0.1) and scales[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(scales[9:], scales[10:])) and scales[-1] == pytest.approx(0.1, abs=0.01)


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with tiny.one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
