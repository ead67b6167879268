"""Checks for chapter 14 exercises."""

from __future__ import annotations

from llmlab.checks import Check  # noqa: F401 - used by the checks below

# ------ first part's checks go here (14.1-14.2: FLOPs, scaling-law fit)
# isort: split
import numpy as np

from llmlab.scaling import flops as _flops
from llmlab.scaling import laws as _laws

_CONFIGS = [  # Llama-style (SwiGLU, RMSNorm, no biases): tied and untied heads, with and without GQA
    _flops.DecoderConfig("SmolLM2-135M shape", vocab=49152, hidden=576, layers=30, heads=9, kv_heads=3, inner=1536,
                         tied=True),
    _flops.DecoderConfig("Llama-2-7B shape", vocab=32000, hidden=4096, layers=32, heads=32, kv_heads=32, inner=11008,
                         tied=False),
    _flops.DecoderConfig("small untied GQA", vocab=1000, hidden=64, layers=3, heads=8, kv_heads=2, inner=176,
                         tied=False),
    _flops.DecoderConfig("one layer, tied, GQA", vocab=300, hidden=48, layers=1, heads=6, kv_heads=2, inner=80,
                         tied=True),
]


def check_params_and_flops(params_and_flops) -> None:
    """Exercise 14.1: (total parameters, training FLOPs 6 N D) of a Llama-style decoder config and a token count."""
    with Check("Exercise 14.1 params_and_flops") as c:
        for cfg, tokens in zip(_CONFIGS, (2e12, 2e12, 1e6, 3e5)):
            case = f"{cfg.name} ({cfg.layers} layers, hidden {cfg.hidden}, {cfg.heads}/{cfg.kv_heads} heads, " \
                   f"inner {cfg.inner}, {'tied' if cfg.tied else 'untied'}), D = {tokens:g}"
            got = c.call(params_and_flops, cfg, tokens, case=case)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"expected a tuple (parameters, FLOPs), got {type(got).__name__}")
            n, f = got
            want_n = _flops.param_counts(cfg)["total"]
            c.that(isinstance(n, (int, np.integer)) and not isinstance(n, bool), case,
                   f"parameters: expected an int, got {type(n).__name__}")
            c.that(int(n) == want_n, case, f"parameters: expected {want_n:,}, got {int(n):,} (difference "
                                           f"{int(n) - want_n:+,}); check the tied head, the k/v width with GQA, "
                                           f"the three SwiGLU matrices, the norms and the layer count")
            c.close(f, _flops.training_flops(want_n, tokens), case=case + ", FLOPs", atol=0.0, rtol=1e-9)


_THETAS = [np.array([3.0, 4.0, 0.2, 0.35, 0.25]), np.array([5.5, 2.0, -0.5, 0.6, 0.15])]
_N = np.array([2.0e3, 2.0e4, 1.5e5, 6.0e5])
_D = np.array([5.0e4, 1.0e6, 3.0e5, 8.0e4])
_LOSS = np.array([3.1, 2.4, 2.05, 2.6])


def check_log_residuals(log_residuals) -> None:
    """Exercise 14.2: log(E + A/N^alpha + B/D^beta) - log(loss) with theta = (ln A, ln B, ln E, alpha, beta); a fit
    with it and bounds recovers known parameters."""
    with Check("Exercise 14.2 log_residuals") as c:
        for i, theta in enumerate(_THETAS):
            case = f"theta = {theta.tolist()} on 4 points"
            got = c.call(log_residuals, theta.copy(), _N.copy(), _D.copy(), _LOSS.copy(), case=case)
            c.that(isinstance(got, np.ndarray), case, f"expected a numpy array, got {type(got).__name__}")
            want = _laws._log_predict(theta, np.log(_N), np.log(_D)) - np.log(_LOSS)
            c.close(got, want, case=case, atol=1e-9, rtol=1e-7)
        from scipy.optimize import least_squares

        true = _laws.LawFit(E=1.3, A=40.0, B=90.0, alpha=0.45, beta=0.3)
        n = np.repeat(np.geomspace(2e3, 4e5, 4), 3)
        d = np.tile(np.geomspace(4e4, 4e5, 3), 4)
        loss = _laws.predict(true, n, d)
        case = "least_squares with your residuals on 12 noise-free points"
        bounds = ([-20, -20, np.log(1e-3), 0.05, 0.05], [60, 60, np.log(loss.min()) - 1e-6, 2, 2])
        fit = c.call(least_squares, lambda t: log_residuals(t, n, d, loss), np.array([3.0, 3.0, 0.0, 0.3, 0.3]),
                     bounds=bounds, case=case)
        c.close(float(fit.x[3]), true.alpha, case=case + ", alpha", atol=0.02, rtol=0)
        c.close(float(fit.x[4]), true.beta, case=case + ", beta", atol=0.02, rtol=0)



# ------ second part's checks go here (14.3-14.5: router, window mask, RoPE scaling)
