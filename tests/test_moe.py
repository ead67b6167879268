"""Tests for llmlab.moe: routing, the balancing loss against transformers' Mixtral loss, capacity, upcycling."""

import pytest
import torch

from llmlab import attention, moe
from llmlab.kit import fixtures
from llmlab.scaling import tiny


def test_route_softmax_over_experts_and_renormalised_top_k():
    logits = torch.tensor([[2.0, 0.0, 1.0, -1.0], [0.0, 3.0, 0.0, 2.5]])
    r = moe.route(logits, 2)
    assert torch.allclose(r.probs.sum(-1), torch.ones(2))
    assert r.experts.tolist() == [[0, 2], [1, 3]]
    p = torch.softmax(logits, -1)
    assert torch.allclose(r.weights[0], p[0, [0, 2]] / p[0, [0, 2]].sum())
    assert torch.allclose(r.weights.sum(-1), torch.ones(2))


def test_route_ties_go_to_lower_expert():
    assert moe.route(torch.tensor([[1.0, 2.0, 2.0, 0.0]]), 2).experts.tolist() == [[1, 2]]
    assert moe.route(torch.zeros(1, 4), 1).experts.tolist() == [[0]]


def test_balancing_loss_uniform_is_one_and_matches_transformers_mixtral_over_k():
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    assert moe.balancing_loss(moe.route(torch.zeros(8, 4), 1)).item() == pytest.approx(0.25 * 4 * 1.0)
    logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    for k in (1, 2):
        ours = moe.balancing_loss(moe.route(logits, k)).item()
        theirs = load_balancing_loss_func((logits,), num_experts=4, top_k=k).item()
        assert ours == pytest.approx(theirs / k, rel=1e-5)


def test_collapsed_router_scores_n():
    logits = torch.tensor([[9.0, 0.0, 0.0, 0.0]] * 5)
    assert moe.balancing_loss(moe.route(logits, 1)).item() == pytest.approx(4.0, rel=1e-3)


def test_capacity_drops_latecomers_in_token_order():
    experts = torch.tensor([[0], [0], [0], [1]])
    assert moe.capacity(4, 1, 2, 1.0) == 2
    assert moe.kept_mask(experts, 2, 1.0).reshape(-1).tolist() == [True, True, False, True]
    assert moe.kept_mask(experts, 2, None).all()


def test_bad_arguments_name_parameter_range_and_value():
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\].*got 5"):
        moe.route(torch.zeros(3, 4), 5)
    with pytest.raises(ValueError, match=r"capacity_factor must be in \(0, inf\), got 0"):
        moe.capacity(4, 1, 2, 0)
    with pytest.raises(ValueError, match="capacity_factor"):
        moe.MoEForward(k=2, capacity_factor=-1.0)


def _tiny_w():
    return tiny.tiny_weights(tiny.TinySpec(layers=2, hidden=32, heads=4, kv_heads=2, inner=48, max_positions=32))


def test_one_expert_moe_forward_equals_dense_forward():
    w = _tiny_w()
    w1 = moe.upcycled(moe.upcycled(w, 0, num_experts=1), 1, num_experts=1)
    ids = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(moe.MoEForward(k=1)(w1, ids), attention.forward(w, ids), atol=1e-6)


def test_upcycled_layer_gives_identical_logits_at_init():
    model = fixtures.tiny_model(seed=3)
    w = attention.from_model(model, 64)
    up = moe.upcycled(w, 1, num_experts=4)
    ids = torch.randint(0, w.vocab_size, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        dense, sparse = attention.forward(w, ids), moe.MoEForward(k=2)(up, ids)
    assert torch.allclose(sparse, dense, atol=1e-5)
    assert up.layers[1].router.shape == (4, w.hidden_size)


def test_capacity_dropping_makes_output_depend_on_the_batch():
    gen = torch.Generator().manual_seed(0)
    hidden, inner, n = 8, 16, 2
    experts = moe.Experts(torch.randn(n, inner, hidden, generator=gen), torch.randn(n, inner, hidden, generator=gen),
                          torch.randn(n, hidden, inner, generator=gen))
    router = torch.zeros(n, hidden)
    router[0, 0] = 10.0
    token = torch.zeros(1, hidden)
    token[0, 0] = 1.0  # routed to expert 0
    others_same = token.repeat(3, 1)
    others_elsewhere = -token.repeat(3, 1)
    a, _, _ = moe.moe_mlp(torch.cat([others_same, token]), router, experts, 1, capacity_factor=1.0)
    b, _, _ = moe.moe_mlp(torch.cat([others_elsewhere, token]), router, experts, 1, capacity_factor=1.0)
    assert torch.all(a[-1] == 0) and not torch.all(b[-1] == 0)


def test_moe_tiny_model_trains_with_balancing_loss():
    w = moe.to_moe(_tiny_w(), num_experts=4, inner=24)
    fwd = moe.MoEForward(k=2)
    tokens = tiny.byte_tokens(tiny.corpus_text()[:3000])
    losses = tiny.train(w, tokens, steps=6, batch=4, seq=16, forward=fwd, extra_loss=lambda: 0.01 *
                        fwd.balancing_loss())
    assert losses[-1] < losses[0]
    assert w.layers[0].router.grad is not None
    assert fwd.usage().shape == (2, 4)
    assert moe.active_mlp_params(32, 24, 4, 2) == (4 * 3 * 32 * 24 + 128, 2 * 3 * 32 * 24 + 128)
