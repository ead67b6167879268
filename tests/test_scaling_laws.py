"""Scaling-law fit: recovers known parameters, compute-optimal allocation, bootstrap, emergence data, bad input."""

import numpy as np
import pytest
import torch

from llmlab.scaling import emergence, laws, tiny

TRUE = laws.LawFit(E=1.2, A=30.0, B=60.0, alpha=0.4, beta=0.3)
N = np.repeat(np.geomspace(2e3, 4e5, 5), 4)
D = np.tile(np.geomspace(5e4, 4e5, 4), 5)


def test_fit_recovers_known_parameters():
    fit = laws.fit_law(N, D, laws.predict(TRUE, N, D))
    assert fit.alpha == pytest.approx(0.4, abs=1e-3) and fit.beta == pytest.approx(0.3, abs=1e-3)
    assert fit.E == pytest.approx(1.2, rel=1e-3)


def test_compute_optimal_is_the_minimum_of_the_isoflop_curve():
    c = 1e13
    n_opt, d_opt = laws.compute_optimal(TRUE, c)
    assert 6 * n_opt * d_opt == pytest.approx(c)
    n = np.geomspace(n_opt / 3, n_opt * 3, 401)
    assert n[np.argmin(laws.isoflop_curve(TRUE, c, n))] == pytest.approx(n_opt, rel=0.02)
    assert laws.tokens_per_param(TRUE, c) == pytest.approx(d_opt / n_opt)


def test_equal_exponents_give_a_ratio_independent_of_compute():
    fit = laws.LawFit(1.0, 10.0, 40.0, 0.3, 0.3)
    assert laws.tokens_per_param(fit, 1e10) == pytest.approx(laws.tokens_per_param(fit, 1e20))


def test_bootstrap_intervals_contain_the_full_fit():
    noisy = laws.predict(TRUE, N, D) * np.exp(np.random.default_rng(0).normal(0, 0.005, len(N)))
    out = laws.bootstrap_law(N, D, noisy, 1e12, n_resamples=10)
    for iv in (out.alpha, out.beta, out.ratio):
        assert iv.low <= iv.high
    assert out.alpha.mean == out.fit.alpha


def test_bad_input():
    with pytest.raises(ValueError, match="loss"):
        laws.fit_law([1e3, 1e4], [1e4, 1e5], [1.0, -2.0])
    with pytest.raises(ValueError, match="same length"):
        laws.fit_law([1e3, 1e4], [1e4], [1.0, 2.0])
    with pytest.raises(ValueError, match="compute"):
        laws.compute_optimal(TRUE, 0)
    with pytest.raises(TypeError, match="fit"):
        laws.predict((1, 2, 3, 4, 5), 1e3, 1e3)


def test_exact_runs_need_every_byte_right():
    hit = torch.tensor([True, True, False, True, True, True])
    assert emergence.exact_runs(hit, 2).tolist() == [True, False, False, True, True]
    assert emergence.exact_runs(hit, 1).tolist() == hit.tolist()
    with pytest.raises(ValueError, match="k"):
        emergence.exact_runs(hit, 7)


def test_untrained_model_rarely_continues_exactly():
    w = tiny.tiny_weights(tiny.TinySpec(layers=1, hidden=16, heads=2, kv_heads=1, inner=32))
    tokens = tiny.byte_tokens("the cat sat on the mat. " * 20)
    score = emergence.score_continuations(w, tokens, ks=(1, 8), seq=32, windows=4, warmup=4)
    assert score.exact_match[1] == pytest.approx(score.byte_accuracy)
    assert score.exact_match[8] <= score.exact_match[1] < 0.5
    assert score.byte_logprob < -3.0


def test_plots_draw_the_grid_and_reject_bad_rows():
    import matplotlib

    matplotlib.use("Agg")
    from llmlab.viz import scaling as plots

    grid = [{"N": float(n), "D": float(d), "val_loss": float(v)} for n, d, v in zip(N, D, laws.predict(TRUE, N, D))]
    assert len(plots.loss_vs_size(grid, TRUE).axes[0].lines) == 8  # 4 token counts: points and fitted dashes
    assert plots.isoflop(TRUE, [1e10, 1e12], grid).axes[0].get_xscale() == "log"
    rows = [{"N": 1e3, "exact_match": {"1": 0.3, "4": 0.0}, "byte_accuracy": 0.3, "byte_logprob": -2.5}]
    assert len(plots.emergence(rows).axes) == 2
    with pytest.raises(ValueError, match="grid"):
        plots.loss_vs_size([{"N": 1.0}])
