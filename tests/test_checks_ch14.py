"""Check-can-fail tests for chapter 14's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests  # noqa: F401

from llmlab.checks import ch14  # noqa: F401

# ------------------------------------------------------------------ first part: FIRST_CASES = [CheckCase(...), ...]
# isort: split
import numpy as np


def _params(cfg, head_twice=False, kv_full=False, mlp=3, layers_delta=0, norms=True) -> int:
    """Parameters of a Llama-style decoder, with switches for the typical mistakes."""
    h, kv = cfg.hidden, (cfg.hidden if kv_full else cfg.kv_heads * cfg.hidden // cfg.heads)
    layer = 2 * h * h + 2 * h * kv + mlp * h * cfg.inner + (2 * h if norms else 0)
    head = cfg.vocab * h if (head_twice or not cfg.tied) else 0
    return cfg.vocab * h + head + (cfg.layers + layers_delta) * layer + (h if norms else 0)


def _params_and_flops(cfg, tokens):
    n = _params(cfg)
    return n, 6.0 * n * tokens


def _mistake(flop_factor=6.0, **kwargs):
    def wrong(cfg, tokens):
        n = _params(cfg, **kwargs)
        return n, flop_factor * n * tokens
    return wrong


def _flops_of_non_embedding(cfg, tokens):
    n = _params(cfg)
    return n, 6.0 * (n - cfg.vocab * cfg.hidden * (1 if cfg.tied else 2)) * tokens


def _flops_as_float_params(cfg, tokens):
    return float(_params(cfg)), 6.0 * _params(cfg) * tokens


def _residuals(theta, n, d, loss):
    log_a, log_b, log_e, alpha, beta = theta
    return np.log(np.exp(log_e) + np.exp(log_a) / n ** alpha + np.exp(log_b) / d ** beta) - np.log(loss)


def _residuals_linear(theta, n, d, loss):
    log_a, log_b, log_e, alpha, beta = theta
    return np.exp(log_e) + np.exp(log_a) / n ** alpha + np.exp(log_b) / d ** beta - loss


def _residuals_swapped(theta, n, d, loss):
    return _residuals(theta, d, n, loss)


def _residuals_no_e(theta, n, d, loss):
    log_a, log_b, _, alpha, beta = theta
    return np.log(np.exp(log_a) / n ** alpha + np.exp(log_b) / d ** beta) - np.log(loss)


def _residuals_log10(theta, n, d, loss):
    log_a, log_b, log_e, alpha, beta = theta
    return np.log10(10 ** log_e + 10 ** log_a / n ** alpha + 10 ** log_b / d ** beta) - np.log10(loss)


def _residuals_exponent_on_term(theta, n, d, loss):
    log_a, log_b, log_e, alpha, beta = theta
    return np.log(np.exp(log_e) + (np.exp(log_a) / n) ** alpha + (np.exp(log_b) / d) ** beta) - np.log(loss)


def _residuals_list(theta, n, d, loss):
    return list(_residuals(theta, n, d, loss))


FIRST_CASES: list = [
    CheckCase(ch14.check_params_and_flops, _params_and_flops,
              wrong=[_mistake(head_twice=True), _mistake(kv_full=True), _mistake(flop_factor=2.0), _mistake(mlp=2),
                     _mistake(layers_delta=-1), _mistake(layers_delta=1), _mistake(norms=False),
                     _flops_of_non_embedding, _flops_as_float_params]),
    CheckCase(ch14.check_log_residuals, _residuals,
              wrong=[_residuals_linear, _residuals_swapped, _residuals_no_e, _residuals_log10,
                     _residuals_exponent_on_term, _residuals_list]),
]


# ------------------------------------------------------------------ second part: SECOND_CASES = [CheckCase(...), ...]
SECOND_CASES: list = []


def _router(logits, k, axis=-1, renorm=True, n_factor=True, f_kind="all", loss_kind="switch", ties="low"):
    """A top-k router with switchable mistakes (the solution when every switch is left alone)."""
    probs = torch.softmax(logits, dim=axis)
    order = torch.sort(probs, dim=-1, descending=True, stable=True).indices
    if ties == "high":
        flipped = torch.sort(probs.flip(-1), dim=-1, descending=True, stable=True).indices
        order = probs.shape[-1] - 1 - flipped
    experts = order[:, :k]
    top = probs.gather(1, experts)
    weights = top / top.sum(-1, keepdim=True) if renorm else top
    n = probs.shape[-1]
    chosen = experts[:, :1] if f_kind == "top1" else experts
    f = torch.bincount(chosen.reshape(-1), minlength=n).float()
    f = f / logits.shape[0] if f_kind == "per_token" else f / chosen.numel()
    p = probs.mean(0)
    inner = (p * p).sum() if loss_kind == "no_f" else (f * p).sum()
    return weights, experts, inner * (n if n_factor else 1)


def _mask(seq, window, sinks, mistake=None):
    """A window-with-sinks mask with one switchable mistake (the solution when mistake is None)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    i, j = torch.arange(seq)[:, None], torch.arange(seq)[None, :]
    causal = j <= i
    near = (i - j < window)
    if mistake == "off_by_one_wide":
        near = i - j <= window
    if mistake == "off_by_one_narrow":
        near = i - j < window - 1
    if mistake == "no_causal":
        causal = torch.ones_like(causal)
        near = (i - j).abs() < window
    if mistake == "sinks_inside_window":
        near = i - j < max(window - sinks, 1)
    sink = j < sinks
    if mistake == "sinks_see_future":
        return (causal & near) | sink
    if mistake == "float":
        return (causal & (near | sink)).float()
    if mistake == "no_sinks":
        return causal & near
    return causal & (near | sink)


def _ntk(d, base, factor, mistake=None):
    """NTK-aware inverse frequencies with one switchable mistake (the solution when mistake is None)."""
    i = torch.arange(0, d, 2, dtype=torch.float64)
    plain = base ** (-i / d)
    if mistake == "no_exponent":
        return (base * factor) ** (-i / d)
    if mistake == "inverse_exponent":
        return (base * factor ** ((d - 2) / d)) ** (-i / d)
    if mistake == "divide_base":
        return (base / factor ** (d / (d - 2))) ** (-i / d)
    if mistake == "position_interpolation":
        return plain / factor
    if mistake == "wrong_dimension":  # the fast dimensions slowed by the factor, the slow ones kept
        return plain / factor ** (1 - i / (d - 2))
    if mistake == "head_dim_convention":
        return (base * factor ** (d / (d - 2))) ** (-torch.arange(d // 2, dtype=torch.float64) / d)
    if mistake == "full_length":
        return torch.cat([plain, plain])
    return (base * factor ** (d / (d - 2))) ** (-i / d)


def _wrong(fn, name, **kw):
    """fn with keyword switches bound, named for the test id."""
    wrapped = lambda *a: fn(*a, **kw)  # noqa: E731
    wrapped.__name__ = name
    return wrapped


SECOND_CASES = [
    CheckCase(ch14.check_top_k_router, _router, wrong=[
        _wrong(_router, "softmax_over_tokens", axis=0), _wrong(_router, "not_renormalised", renorm=False),
        _wrong(_router, "loss_without_N", n_factor=False), _wrong(_router, "f_top1_only", f_kind="top1"),
        _wrong(_router, "f_per_token_sums_to_k", f_kind="per_token"),
        _wrong(_router, "loss_without_f", loss_kind="no_f"),
        _wrong(_router, "ties_to_higher_index", ties="high")]),
    CheckCase(ch14.check_sliding_window_mask, _mask, wrong=[
        _wrong(_mask, m, mistake=m) for m in ["off_by_one_wide", "off_by_one_narrow", "no_causal",
                                              "sinks_inside_window", "sinks_see_future", "float", "no_sinks"]]
        + [_wrong(lambda s, w, k: _mask(s, max(w, 1), k), "no_window_check")]),
    CheckCase(ch14.check_ntk_inv_freq, _ntk, wrong=[
        _wrong(_ntk, m, mistake=m) for m in ["no_exponent", "inverse_exponent", "divide_base",
                                             "position_interpolation", "wrong_dimension", "head_dim_convention",
                                             "full_length"]]),
]


test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(
    FIRST_CASES + SECOND_CASES)
