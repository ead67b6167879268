"""Parameter and FLOP counts: published configs, a real HF model's parameter count, the profiler, bad input."""

import pytest

from llmlab.kit import fixtures
from llmlab.scaling import flops, tiny


def test_mixtral_total_and_active_match_the_published_figures():
    counts = flops.param_counts(flops.MIXTRAL_8X7B)
    assert round(counts["total"] / 1e9, 1) == 46.7
    assert round(counts["active"] / 1e9, 1) == 12.9


def test_llama2_and_gpt3_counts():
    assert round(flops.param_counts(flops.LLAMA2_7B)["total"] / 1e9, 2) == 6.74
    assert 174e9 < flops.param_counts(flops.GPT3_175B)["total"] < 176e9


def test_count_matches_a_transformers_model_with_gqa_and_tied_head():
    model = fixtures.tiny_model(seed=0, vocab_size=256, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                                intermediate_size=80)
    counts = flops.param_counts(flops.from_hf_config(model.config))
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["lm_head"] == 0 and model.config.tie_word_embeddings


def test_profiler_matches_the_formula_on_one_training_step():
    spec = tiny.TinySpec(layers=2, hidden=32, heads=4, kv_heads=2, inner=64)
    w, cfg = tiny.tiny_weights(spec), flops.tiny_config(spec)
    explicit = flops.profiled_training_step_flops(w, 2, 16, explicit_attention=True)
    assert explicit == flops.training_step_flops(cfg, 2, 16)
    # the fused CPU attention kernel is not counted: what remains is the matmul part, 3 x 2 x weights per token
    assert flops.profiled_training_step_flops(w, 2, 16) == 3 * 2 * 16 * flops.forward_flops_per_token(cfg, 0)


def test_gpt3_training_flops_and_days():
    c = flops.training_flops(175e9, 300e9)
    assert c == pytest.approx(3.15e23)
    days = flops.training_days(3.14e23, 256, 60e12)
    assert 236 < days < 237
    assert flops.training_cost(236, 256, 2.0, 0.7) == pytest.approx(4_142_811.43, abs=0.01)


@pytest.mark.parametrize("call,match", [
    (lambda: flops.training_flops(0, 10), "params"),
    (lambda: flops.training_days(1e20, 0, 1e12), "chips"),
    (lambda: flops.training_days(1e20, 8, 1e12, utilization=1.5), "utilization"),
    (lambda: flops.DecoderConfig("x", 10, 30, 2, 4, 2, 64, True), "hidden"),
    (lambda: flops.DecoderConfig("x", 10, 32, 2, 4, 2, 64, True, experts=2, active=3), "active"),
    (lambda: flops.forward_flops_per_token(flops.LLAMA2_7B, context=-1), "context"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types():
    with pytest.raises(TypeError, match="cfg"):
        flops.param_counts({"hidden": 3})
    with pytest.raises(TypeError, match="config"):
        flops.from_hf_config(object())
