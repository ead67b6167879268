"""Check-can-fail tests for chapter 14's exercise checks."""

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


test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(
    FIRST_CASES + SECOND_CASES)
