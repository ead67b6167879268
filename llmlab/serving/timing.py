"""Wall-clock timing of Python calls: one call, or repeated calls summarised as best, median or mean.

The one owner of timing helpers in llmlab and benchmarks/. It sits in `llmlab.serving` because measuring time is
chapter 10's subject (roofline, TTFT/TPOT, prefix caching); other chapters (probes, speculative decoding) import it
from here. It depends on the standard library only, so importing it costs nothing.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from llmlab import validate


def timed(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
    """Call fn(*args, **kwargs) once; return (its result, wall seconds)."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


@dataclass(frozen=True)
class Timing:
    """Wall seconds of repeated calls, and the last call's result (None when built from seconds alone)."""

    seconds: tuple[float, ...]
    result: Any = None

    def __post_init__(self):
        validate.non_empty("seconds", self.seconds)
        object.__setattr__(self, "seconds", tuple(validate.number("seconds[i]", s, 0) for s in self.seconds))

    @property
    def best(self) -> float:
        """The fastest call: the least disturbed by other work on the machine."""
        return min(self.seconds)

    @property
    def median(self) -> float:
        """The middle call (the mean of the two middle ones for an even count)."""
        return statistics.median(self.seconds)

    @property
    def mean(self) -> float:
        """The average call."""
        return statistics.fmean(self.seconds)


def time_calls(fn: Callable[[], Any], repeats: int = 3, warmup: int = 0) -> Timing:
    """Call fn() `warmup` times untimed, then `repeats` times timed; the seconds of each timed call."""
    validate.positive_int("repeats", repeats)
    validate.integer("warmup", warmup, low=0)
    for _ in range(warmup):
        fn()
    out, seconds = None, []
    for _ in range(repeats):
        out, s = timed(fn)
        seconds.append(s)
    return Timing(tuple(seconds), out)


def summarise(seconds: Sequence[float]) -> Timing:
    """A Timing of seconds measured elsewhere (e.g. round-robin over several functions), for best/median/mean."""
    return Timing(tuple(seconds))
