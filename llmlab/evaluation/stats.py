"""Statistics for evaluation results: bootstrap intervals, how many samples detect a difference, Simpson's paradox."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from llmlab import validate as V


class Interval(NamedTuple):
    """A point estimate and its interval: `mean` (the statistic on the full data), `low`, `high`.

    >>> iv = Interval(0.65, 0.45, 0.85)
    >>> f"{iv:.1%}", str(iv)
    ('65.0% [45.0%, 85.0%]', '0.65 [0.45, 0.85]')
    """

    mean: float
    low: float
    high: float

    def __format__(self, spec: str) -> str:
        """'mean [low, high]', each number formatted with `spec` (default '.3g'), e.g. f"{interval:.1%}"."""
        spec = spec or ".3g"
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        """'mean [low, high]' with three significant digits."""
        return format(self, "")


def bootstrap_ci(values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                 statistic: Callable[[np.ndarray], float] = np.mean) -> Interval:
    """Percentile bootstrap interval of `statistic`: resample `values` with replacement (same size) n_resamples times
    and take the (1-confidence)/2 and 1-(1-confidence)/2 quantiles; the kit's one bootstrap.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    Interval(mean=1.0, low=1.0, high=1.0)
    """
    V.non_empty("values", values)
    V.integer("n_resamples", n_resamples, low=10)
    V.probability("confidence", confidence, open_low=True, open_high=True)
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(data), size=(n_resamples, len(data)))
    stats = np.array([statistic(data[row]) for row in idx]) if statistic is not np.mean else data[idx].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return Interval(float(statistic(data)), float(low), float(high))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95,
                     seed: int = 0) -> Interval:
    """mean(b) - mean(a) over paired per-example scores, with its percentile bootstrap interval.

    >>> paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1])
    Interval(mean=1.0, low=1.0, high=1.0)
    """
    V.non_empty("a", a)
    V.same_length(("a", "b"), a, b)
    for name, values in (("a", a), ("b", b)):
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or math.isnan(v):
                raise TypeError(f"{name}[{i}] must be a number (a metric score), got {type(v).__name__} {v!r}")
    return bootstrap_ci([float(y) - float(x) for x, y in zip(a, b)], n_resamples, confidence, seed)


def two_proportion_p_value(correct_a: int, correct_b: int, n: int) -> float:
    """Two-sided p-value of a pooled two-proportion z-test: correct_a/n vs correct_b/n (independent samples)."""
    V.integer("n", n, low=1)
    V.integer("correct_a", correct_a, low=0, high=n)
    V.integer("correct_b", correct_b, low=0, high=n)
    pooled = (correct_a + correct_b) / (2 * n)
    se = math.sqrt(2 * pooled * (1 - pooled) / n)
    if se == 0:
        return 1.0
    z = abs(correct_a - correct_b) / n / se
    return math.erfc(z / math.sqrt(2))


def detection_rate(accuracy_a: float, accuracy_b: float, n: int, trials: int = 2000, alpha: float = 0.05,
                   seed: int = 0) -> float:
    """Share of simulated evaluations (n questions per model, independent) in which a two-proportion z-test at level
    alpha finds the difference between two models of these true accuracies (the test's power)."""
    V.probability("accuracy_a", accuracy_a)
    V.probability("accuracy_b", accuracy_b)
    V.integer("n", n, low=1)
    V.integer("trials", trials, low=1)
    V.probability("alpha", alpha, open_low=True, open_high=True)
    rng = np.random.default_rng(seed)
    a = rng.binomial(n, accuracy_a, size=trials) / n
    b = rng.binomial(n, accuracy_b, size=trials) / n
    pooled = (a + b) / 2
    se = np.sqrt(2 * pooled * (1 - pooled) / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, np.abs(a - b) / se, 0.0)
    critical = _normal_quantile(1 - alpha / 2)
    return float((z > critical).mean())


def _normal_quantile(q: float) -> float:
    """Inverse standard normal CDF."""
    return NormalDist().inv_cdf(q)


def samples_needed(difference: float, baseline: float = 0.5, power: float = 0.8, alpha: float = 0.05,
                   trials: int = 2000, seed: int = 0, grid: Sequence[int] | None = None) -> int:
    """Smallest n on a grid (about 12 steps per decade) at which the simulated detection rate of `baseline` vs
    `baseline + difference` reaches `power`."""
    V.number("difference", difference, low=0.0, high=1.0, low_open=True)
    V.probability("baseline", baseline)
    if baseline + difference > 1:
        raise ValueError(f"baseline + difference must be <= 1, got {baseline} + {difference}")
    V.probability("power", power, open_low=True, open_high=True)
    grid = grid or sorted({int(round(10 ** (e / 12))) for e in range(0, 73)})
    for n in grid:
        if detection_rate(baseline, baseline + difference, n, trials, alpha, seed) >= power:
            return n
    raise ValueError(f"no n up to {max(grid)} reaches power {power} for difference {difference}")


def samples_needed_formula(difference: float, baseline: float = 0.5, power: float = 0.8, alpha: float = 0.05) -> float:
    """The textbook normal-approximation sample size per model: (z_{1-a/2} + z_power)^2 (p1 q1 + p2 q2) / d^2."""
    V.number("difference", difference, low=0.0, high=1.0, low_open=True)
    p1, p2 = baseline, baseline + difference
    z = _normal_quantile(1 - alpha / 2) + _normal_quantile(power)
    return z * z * (p1 * (1 - p1) + p2 * (1 - p2)) / difference ** 2


# AI Engineering (Chip Huyen, 2025), chapter 4, quoting OpenAI: difference to detect -> samples needed (95%).
BOOK_SAMPLE_SIZES = {0.30: 10, 0.10: 100, 0.03: 1_000, 0.01: 10_000}

# AI Engineering, chapter 4 (Simpson's paradox, from the kidney-stone study): (successes, trials) per group.
BOOK_SIMPSON = {"A": {"small": (81, 87), "large": (192, 263)}, "B": {"small": (234, 270), "large": (55, 80)}}


@dataclass(frozen=True)
class GroupRates:
    """Success rate of each option within each group and overall."""

    by_group: dict[str, dict[str, float]]
    overall: dict[str, float]

    def best(self, group: str | None = None) -> str:
        """The option with the highest rate in one group (or overall when group is None)."""
        rates = self.overall if group is None else {o: self.by_group[o][group] for o in self.by_group}
        return max(rates, key=rates.get)

    def is_simpson(self) -> bool:
        """Whether one option wins every group but loses overall."""
        groups = next(iter(self.by_group.values())).keys()
        winners = {self.best(g) for g in groups}
        return len(winners) == 1 and winners != {self.best()}


def group_rates(counts: Mapping[str, Mapping[str, tuple[int, int]]]) -> GroupRates:
    """Rates from {option: {group: (successes, trials)}}; overall pools the counts."""
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError(f"counts must be a non-empty {{option: {{group: (successes, trials)}}}}, got {counts!r:.60}")
    by_group, overall = {}, {}
    for option, groups in counts.items():
        by_group[option] = {}
        for group, pair in groups.items():
            successes, trials = pair
            V.integer(f"counts[{option!r}][{group!r}] trials", trials, low=1)
            V.integer(f"counts[{option!r}][{group!r}] successes", successes, low=0, high=trials)
            by_group[option][group] = successes / trials
        overall[option] = sum(s for s, _ in groups.values()) / sum(t for _, t in groups.values())
    return GroupRates(by_group, overall)
