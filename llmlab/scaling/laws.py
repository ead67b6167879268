"""Scaling-law fits: L(N, D) = E + A/N^alpha + B/D^beta, its bootstrap intervals, and the compute-optimal N and D."""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple, Sequence

import numpy as np

from llmlab import validate
from llmlab.evaluation.stats import Interval, bootstrap_ci

CHINCHILLA_TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022: about 20 training tokens per parameter at the optimum


class LawFit(NamedTuple):
    """Fitted L(N, D) = E + A / N**alpha + B / D**beta (loss in nats, N parameters, D training tokens)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float


def _arrays(n: Sequence[float], d: Sequence[float], loss: Sequence[float] | None = None) -> list[np.ndarray]:
    """Validated positive float arrays of equal length."""
    out = []
    for name, values in (("n", n), ("d", d), ("loss", loss)):
        if values is None:
            continue
        a = np.asarray(validate.non_empty(name, values) if not np.isscalar(values) else [values], dtype=np.float64)
        if a.ndim != 1 or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"{name} must hold finite numbers > 0, got {a.tolist()[:5]}")
        out.append(a)
    for a in out[1:]:
        validate.same_length(("n", "d/loss"), out[0], a)
    return out


def predict(fit: LawFit, n: float | Sequence[float], d: float | Sequence[float]) -> np.ndarray:
    """The fitted loss at parameter counts n and token counts d (broadcast together)."""
    if not isinstance(fit, LawFit):
        raise TypeError(f"fit must be a LawFit, got {type(fit).__name__}")
    n, d = np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)
    return fit.E + fit.A / n ** fit.alpha + fit.B / d ** fit.beta


def _log_predict(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """log L for theta = (log A, log B, log E, alpha, beta): a log-sum-exp of the three terms, stable in log space."""
    a, b, e, alpha, beta = theta
    return np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)


def _log_jacobian(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """d log L / d theta: each term's share of L, times -log N or -log D for the exponents."""
    a, b, e, alpha, beta = theta
    total = _log_predict(theta, log_n, log_d)
    wa, wb, we = np.exp(a - alpha * log_n - total), np.exp(b - beta * log_d - total), np.exp(e - total)
    return np.stack([wa, wb, we, -wa * log_n, -wb * log_d], axis=1)


def fit_law(n: Sequence[float], d: Sequence[float], loss: Sequence[float],
            exponent_bounds: tuple[float, float] = (0.05, 2.0)) -> LawFit:
    """Fit L(N, D) by least squares on log L (Hoffmann et al. 2022, approach 3, use a Huber loss), best of 4 starts.

    Bounds keep the fit meaningful: 0 < E < min(loss) and the exponents inside exponent_bounds.
    """
    from scipy.optimize import least_squares

    n_, d_, loss_ = _arrays(n, d, loss)
    lo, hi = exponent_bounds
    validate.number("exponent_bounds[0]", lo, low=0.0, low_open=True)
    validate.number("exponent_bounds[1]", hi, low=lo, low_open=True)
    log_n, log_d, log_l = np.log(n_), np.log(d_), np.log(loss_)
    e_high = math.log(loss_.min()) - 1e-6
    bounds = ([-20.0, -20.0, math.log(1e-3), lo, lo], [60.0, 60.0, e_high, hi, hi])
    best = None
    for alpha, beta, e_share in itertools.product((0.2, 0.6), (0.2, 0.6), (0.5,)):
        e0 = min(math.log(e_share * loss_.min()), e_high - 1e-3)
        rest = max(loss_.max() - math.exp(e0), 1e-3) / 2
        start = np.array([math.log(rest) + alpha * log_n.mean(), math.log(rest) + beta * log_d.mean(), e0, alpha,
                          beta])
        start = np.clip(start, np.array(bounds[0]) + 1e-9, np.array(bounds[1]) - 1e-9)
        res = least_squares(lambda t: _log_predict(t, log_n, log_d) - log_l, start, bounds=bounds,
                            jac=lambda t: _log_jacobian(t, log_n, log_d))
        if best is None or res.cost < best.cost:
            best = res
    a, b, e, alpha, beta = best.x
    return LawFit(float(math.exp(e)), float(math.exp(a)), float(math.exp(b)), float(alpha), float(beta))


def compute_optimal(fit: LawFit, compute: float) -> tuple[float, float]:
    """(N, D) minimising the fitted loss under C = 6 N D: N = G (C/6)^(beta/(alpha+beta)), G = (alpha A / beta B)
    ^(1/(alpha+beta)) (Hoffmann et al. 2022, eq. 4)."""
    if not isinstance(fit, LawFit):
        raise TypeError(f"fit must be a LawFit, got {type(fit).__name__}")
    validate.number("compute", compute, 0, low_open=True)
    s = fit.alpha + fit.beta
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1 / s)
    n_opt = g * (compute / 6) ** (fit.beta / s)
    return float(n_opt), float(compute / 6 / n_opt)


def tokens_per_param(fit: LawFit, compute: float) -> float:
    """The compute-optimal D / N at budget `compute` (Chinchilla's is about 20)."""
    n_opt, d_opt = compute_optimal(fit, compute)
    return d_opt / n_opt


class LawIntervals(NamedTuple):
    """Bootstrap intervals (full-data fit, low, high) of the exponents and of the optimal tokens per parameter."""

    alpha: Interval
    beta: Interval
    ratio: Interval
    fit: LawFit


def bootstrap_law(n: Sequence[float], d: Sequence[float], loss: Sequence[float], compute: float,
                  n_resamples: int = 200, confidence: float = 0.9, seed: int = 0) -> LawIntervals:
    """Refit on grid points resampled with replacement: intervals for alpha, beta and D/N at `compute`."""
    n_, d_, loss_ = _arrays(n, d, loss)
    validate.number("compute", compute, 0, low_open=True)
    fits: dict[tuple[int, ...], LawFit] = {}

    def fit_of(idx: np.ndarray) -> LawFit:
        key = tuple(sorted(int(i) for i in idx))
        if key not in fits:
            rows = list(key)
            fits[key] = fit_law(n_[rows], d_[rows], loss_[rows])
        return fits[key]

    index = np.arange(len(n_), dtype=np.float64)
    stats = {name: bootstrap_ci(index, n_resamples, confidence, seed, statistic=lambda i, f=fn: f(fit_of(i)))
             for name, fn in (("alpha", lambda f: f.alpha), ("beta", lambda f: f.beta),
                              ("ratio", lambda f: tokens_per_param(f, compute)))}
    return LawIntervals(stats["alpha"], stats["beta"], stats["ratio"], fit_of(index))


def isoflop_curve(fit: LawFit, compute: float, n: Sequence[float]) -> np.ndarray:
    """The fitted loss along a fixed budget: each model size n trained on D = C / (6 n) tokens."""
    n_ = np.asarray(n, dtype=np.float64)
    validate.number("compute", compute, 0, low_open=True)
    return predict(fit, n_, compute / (6 * n_))
