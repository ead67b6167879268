"""Checks for chapter 14 exercises."""

from __future__ import annotations

import torch

from llmlab import longcontext as lc
from llmlab import moe
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
def _tensor_case(c: Check, got, case: str, shape: tuple, what: str) -> torch.Tensor:
    """The learner's result as a tensor of the expected shape, or a failed case saying what came back."""
    c.that(isinstance(got, torch.Tensor), case, f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    c.that(tuple(got.shape) == shape, case, f"{what}: expected shape {shape}, got {tuple(got.shape)}")
    return got


def check_top_k_router(top_k_router) -> None:
    """Exercise 14.3: (weights, experts, loss) of top-k routing; loss = N · Σ f_i P_i over the T·k assignments."""
    gen = torch.Generator().manual_seed(14)
    cases = {
        "6 tokens, 4 experts, k=2": (torch.randn(6, 4, generator=gen) * 2, 2),
        "5 tokens, 3 experts, k=1 (Switch)": (torch.randn(5, 3, generator=gen) * 2, 1),
        "3 tokens, 5 experts, k=3 (more experts than tokens)": (torch.randn(3, 5, generator=gen) * 2, 3),
        "a tie inside the top 2: logits [1, 2, 2, 0] (ties go to the lower expert)": (
            torch.tensor([[1.0, 2.0, 2.0, 0.0], [0.5, -1.0, 2.5, 1.5]]), 2),
        "a tie at the top-2 edge: logits [3, 1, 1, 0] (expert 1 wins over 2)": (
            torch.tensor([[3.0, 1.0, 1.0, 0.0], [-1.0, 0.0, 2.0, 0.5]]), 2),
    }
    with Check("Exercise 14.3 top_k_router") as c:
        for case, (logits, k) in cases.items():
            got = c.call(top_k_router, logits.clone(), k, case=case)
            c.that(isinstance(got, tuple) and len(got) == 3, case,
                   f"expected a tuple (weights, experts, loss), got {type(got).__name__}")
            weights, experts, loss = got
            want = moe.route(logits, k)
            t = logits.shape[0]
            experts = _tensor_case(c, experts, case, (t, k), "experts")
            c.that(not experts.is_floating_point(), case, f"experts: expected integer indices, got {experts.dtype}")
            c.that(experts.tolist() == want.experts.tolist(), case,
                   f"experts: expected {want.experts.tolist()} (k most probable per row, most probable first, ties "
                   f"to the lower index; softmax over experts, the last axis), got {experts.tolist()}")
            weights = _tensor_case(c, weights, case, (t, k), "weights")
            c.close(weights, want.weights, case + ": weights (probabilities renormalised over the k chosen)", atol=1e-5)
            c.close(loss, moe.balancing_loss(want).item(),
                    case + ": balancing loss N·Σ f_i·P_i (f over all T·k assignments)", atol=1e-5)


def check_sliding_window_mask(sliding_window_mask) -> None:
    """Exercise 14.4: bool (seq, seq) mask: causal, the current token and window-1 before it, plus the first sinks."""
    cases = [(8, 3, 0), (8, 3, 2), (6, 1, 0), (7, 1, 2), (5, 9, 1), (10, 4, 3), (1, 1, 0)]
    with Check("Exercise 14.4 sliding_window_mask") as c:
        for seq, window, sinks in cases:
            case = f"seq_len={seq}, window={window}, sinks={sinks}"
            got = _tensor_case(c, c.call(sliding_window_mask, seq, window, sinks, case=case), case, (seq, seq),
                               "mask")
            c.that(got.dtype == torch.bool, case, f"expected a bool mask (True = may attend), got {got.dtype}")
            want = lc.sliding_window_mask_loop(seq, window, sinks)
            bad = torch.nonzero(got != want)
            if len(bad):
                i, j = bad[0].tolist()
                c.fail(case, f"{len(bad)} of {seq * seq} entries differ; first: query {i} → key {j}: expected "
                             f"{bool(want[i, j])}, got {bool(got[i, j])} (a query sees keys i-window+1..i and the "
                             f"first `sinks` keys, never a key after itself)")
            c.that(True, case, "")
        case = "window=0 must raise ValueError"
        try:
            sliding_window_mask(4, 0, 0)
        except ValueError:
            c.that(True, case, "")
        except NotImplementedError:
            c.call(sliding_window_mask, 4, 0, 0, case=case)
        except Exception as exc:  # noqa: BLE001 - any other error is the learner's
            c.fail(case, f"expected ValueError naming window, got {type(exc).__name__}: {exc}")
        else:
            c.fail(case, "expected ValueError for window < 1, got no error")


def check_ntk_inv_freq(ntk_inv_freq) -> None:
    """Exercise 14.5: NTK-aware RoPE inverse frequencies (head_dim/2,) with base·factor^(d/(d-2))."""
    cases = [(8, 10000.0, 4.0), (16, 10000.0, 2.0), (64, 500000.0, 8.0), (32, 10000.0, 1.0), (4, 100.0, 3.0)]
    with Check("Exercise 14.5 ntk_inv_freq") as c:
        for d, base, factor in cases:
            case = f"head_dim={d}, base={base:g}, factor={factor:g}"
            got = _tensor_case(c, c.call(ntk_inv_freq, d, base, factor, case=case), case, (d // 2,),
                               "inv_freq (one per pair of dimensions)")
            c.that(got.is_floating_point(), case, f"expected a floating-point tensor, got {got.dtype}")
            c.close(got.double(), lc.ntk_inv_freq(d, base, factor).double(), case, atol=0.0, rtol=1e-4)
