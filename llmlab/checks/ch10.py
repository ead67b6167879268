"""Checks for chapter 10 (inference economics) exercises."""

from __future__ import annotations

from llmlab.checks import Check, call_forbidding
from llmlab.serving import cost, latency, prefix_cache, roofline, utilization


def _hint(got, expected: float, hints: dict[float, str]) -> str:
    """A learner-words explanation when got is a known wrong multiple of expected."""
    try:
        ratio = float(got) / expected
    except (TypeError, ValueError, ZeroDivisionError):
        return ""
    for factor, text in hints.items():
        if abs(ratio - factor) < 1e-3 * factor:
            return f" — {text}"
    return ""


def _number(c: Check, got, expected: float, case: str, hints: dict[float, str], rtol: float = 1e-4) -> None:
    """Closeness check of one number with a hint for the usual mistakes."""
    c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
           f"expected a number (float), got {type(got).__name__}")
    c.that(abs(got - expected) <= rtol * abs(expected) + 1e-12, case,
           f"expected {expected:.6g}, got {got:.6g}{_hint(got, expected, hints)}")


def _interpolate(data: list[float], rank: float) -> float:
    """Linear interpolation at a fractional index of a list (sorted or not)."""
    lo = int(rank)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def check_mbu(mbu) -> None:
    """Exercise 10.1: params × bytes/param × tokens/s ÷ (bandwidth in GB/s × 1e9), as a fraction."""
    hints = {0.5: "did you forget the bytes per parameter? (AI Engineering's own slip: 700 GB/s instead of 1.4 TB/s)",
             100.0: "return a fraction (0.7), not a percentage (70)",
             8.0: "bytes, not bits: do not multiply by 8",
             1e9: "bandwidth_gb_s is in GB/s: multiply it by 1e9 to get bytes/s",
             1e9 / 2**30: "a GB on a spec sheet is 1e9 bytes, not 2**30 (GiB)"}
    cases = [("AI Engineering's example: 7B params, fp16 (2 B), 100 tok/s, A100 2,000 GB/s", (7e9, 2, 100, 2000)),
             ("70B params in int4 (0.5 B), 20 tok/s, H100 3,350 GB/s", (70e9, 0.5, 20, 3350)),
             ("135M params in fp32 (4 B), 20 tok/s, a laptop's 25 GB/s", (135e6, 4, 20, 25)),
             ("8B params in fp8 (1 B), 150 tok/s, H100 3,350 GB/s", (8e9, 1, 150, 3350))]
    with Check("Exercise 10.1 mbu") as c:
        for case, args in cases:
            _number(c, c.call(mbu, *args, case=case), utilization.mbu(*args), case, hints)


_LIBRARY_PERCENTILES = ["numpy.percentile", "numpy.quantile", "numpy.nanpercentile", "numpy.nanquantile",
                        "numpy.median", "torch.quantile", "statistics.quantiles", "statistics.median",
                        "llmlab.serving.latency.percentile"]


def check_percentile(percentile) -> None:
    """Exercise 10.2: q-th percentile with linear interpolation between sorted values (numpy's default)."""
    book = list(latency.BOOK_TTFTS_MS)
    cases = [("AI Engineering's ten TTFTs, q=50 (median)", book, 50), ("AI Engineering's ten TTFTs, q=90", book, 90),
             ("AI Engineering's ten TTFTs, q=99", book, 99), ("AI Engineering's ten TTFTs, q=0", book, 0),
             ("AI Engineering's ten TTFTs, q=100", book, 100), ("[5, 1, 3, 2], q=50", [5, 1, 3, 2], 50),
             ("[5, 1, 3, 2], q=25", [5, 1, 3, 2], 25), ("one value [0.7], q=95", [0.7], 95)]
    with Check("Exercise 10.2 percentile") as c:
        for case, values, q in cases:
            expected = latency.percentile(values, q)
            got = call_forbidding(c, percentile, list(values), q, case=case, forbidden=_LIBRARY_PERCENTILES,
                                  hint="sort, then interpolate between two neighbours in plain Python")
            c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
                   f"expected a number, got {type(got).__name__}")
            hint = ""
            data = sorted(values)
            rank = q / 100 * (len(data) - 1)
            if float(got) != expected and float(got) in (data[int(rank)], data[min(round(rank), len(data) - 1)]):
                hint = " — interpolate between the two neighbouring values (rank = q/100 × (n − 1))"
            elif float(got) != expected and abs(float(got) - _interpolate(list(values), rank)) < 1e-9:
                hint = " — sort the values first"
            c.that(abs(float(got) - expected) < 1e-9 * max(1.0, abs(expected)), case,
                   f"expected {expected:g}, got {got!r}{hint}")


def check_goodput(goodput) -> None:
    """Exercise 10.3: requests per second meeting *both* TTFT ≤ ttft_slo and TPOT ≤ tpot_slo."""
    cases = [("5 requests over 2 s, SLO TTFT ≤ 0.2 s and TPOT ≤ 0.1 s (one exactly at the TPOT limit)",
              [0.1, 0.3, 0.2, 0.1, 0.25], [0.05, 0.05, 0.2, 0.1, 0.3], 0.2, 0.1, 2.0),
             ("4 requests over 10 s, SLO TTFT ≤ 1 s and TPOT ≤ 0.05 s",
              [0.5, 1.0, 2.0, 0.9], [0.04, 0.05, 0.01, 0.06], 1.0, 0.05, 10.0),
             ("3 requests over 1 s, all good", [0.1, 0.1, 0.1], [0.01, 0.01, 0.01], 0.5, 0.1, 1.0)]
    with Check("Exercise 10.3 goodput") as c:
        for case, ttfts, tpots, ts, ps, duration in cases:
            expected = latency.goodput(ttfts, tpots, latency.SLO(ts, ps), duration)
            got = c.call(goodput, list(ttfts), list(tpots), ts, ps, duration, case=case)
            either = sum(t <= ts or p <= ps for t, p in zip(ttfts, tpots)) / duration
            strict = sum(t < ts and p < ps for t, p in zip(ttfts, tpots)) / duration
            hints = {len(ttfts) / duration / max(expected, 1e-12): "that counts every request (throughput)",
                     duration: "divide the number of good requests by the duration (requests per second)",
                     duration / len(ttfts): "that is the fraction of good requests; goodput is per second"}
            if either != expected:
                hints[either / expected if expected else 0] = ("a request must meet both SLOs; you counted "
                                                               "requests that met only one")
            if strict != expected:
                hints[strict / expected if expected else 0] = "a value exactly at the SLO meets it (use <=)"
            _number(c, got, expected, case, hints, rtol=1e-9)


def check_prefill_tokens(prefill_tokens) -> None:
    """Exercise 10.4: tokens each request must prefill when every earlier prompt's KV cache is kept."""
    system = [1, 2, 3, 4]
    cases = {
        "six requests sharing a system prompt": [system + [5, 6, 7], system + [8, 9], system + [8, 9, 10, 11],
                                                 system + [5, 6, 7], [1, 2, 20], [30, 31, 32]],
        "nothing shared": [[7, 8], [9], [10, 11, 12]],
        "one request": [[4, 5, 6]],
        "the same prompt three times": [[5, 6, 7, 8]] * 3,
        "shared tokens in another order (only a shared PREFIX is reusable)": [[1, 2, 3, 4], [4, 3, 2, 1], [9, 1, 2, 3]],
    }
    with Check("Exercise 10.4 prefill_tokens") as c:
        for case, reqs in cases.items():
            expected = prefix_cache.prefill_tokens(reqs)
            got = c.call(prefill_tokens, [list(r) for r in reqs], case=case)
            c.that(isinstance(got, list) and len(got) == len(reqs), case,
                   f"expected a list of {len(reqs)} ints (one per request), got {got!r}")
            wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if g != e]
            hint = ""
            if wrong and any(g == 0 for g in got):
                hint = " — a request always computes at least one token (its logits give the first output token)"
            elif wrong:
                hint = " — compare with every earlier request, reuse the longest shared prefix"
            c.that(not wrong, case, f"expected {expected}, got {got} (first wrong: request {wrong[0] if wrong else 0}"
                                    f"){hint}")


def check_matmul_intensity(matmul_intensity) -> None:
    """Exercise 10.5: 2·m·n·k FLOPs ÷ ((m·k + k·n + m·n) × bytes per value)."""
    hints = {0.5: "a multiply-accumulate is 2 FLOPs (one multiply, one add)",
             0.125: "bytes, not bits"}
    cases = [("decode: (1, 4096) @ (4096, 4096) in fp16", (1, 4096, 4096, 2)),
             ("prefill: (512, 4096) @ (4096, 4096) in fp16", (512, 4096, 4096, 2)),
             ("square (1024, 1024) @ (1024, 1024) in int8", (1024, 1024, 1024, 1)),
             ("small (2, 4) @ (4, 3) in fp32", (2, 3, 4, 4))]
    with Check("Exercise 10.5 matmul_intensity") as c:
        for case, (m, n, k, b) in cases:
            expected = roofline.matmul_intensity(m, n, k, b)
            no_out = 2 * m * n * k / ((m * k + k * n) * b)
            case_hints = dict(hints)
            case_hints[no_out / expected] = "count the output write too: the (m, n) result is m·n values"
            _number(c, c.call(matmul_intensity, m, n, k, b, case=case), expected, case, case_hints)


def check_cost_per_million(cost_per_million_tokens) -> None:
    """Exercise 10.6: $ per 1M tokens = $/hour ÷ (tokens/s × 3600) × 1e6."""
    hints = {1e-3: "per million tokens, not per thousand", 1 / 3600: "an hour has 3,600 seconds",
             1 / 60: "an hour has 3,600 seconds, not 60"}
    cases = [("AI Engineering's example: $2/h at 100 tokens/s", (2.0, 100.0)),
             ("$4/h at 2,500 tokens/s", (4.0, 2500.0)), ("$0.50/h at 20 tokens/s", (0.5, 20.0))]
    with Check("Exercise 10.6 cost_per_million_tokens") as c:
        for case, args in cases:
            _number(c, c.call(cost_per_million_tokens, *args, case=case), cost.cost_per_million_tokens(*args),
                    case, hints)


def _requests(rows: list[tuple[int, int, int, int]]) -> list[dict]:
    """Request dicts from (id, prompt, max_new, made) rows."""
    return [{"id": i, "prompt": p, "max_new": n, "made": m} for i, p, n, m in rows]


# (case, waiting rows, running rows, max_batch, token_budget): each case is built so one family of mistakes
# gives a different answer from the right one
_SCHEDULER_CASES = [
    ("the next request fits the budget exactly (10 reserved + 6 = 16 of 16): admit it",
     [(1, 2, 4, 0)], [(0, 4, 6, 2)], 4, 16),
    ("request 1 does not fit (10 + 10 > 13); request 2 would, but may not skip ahead of it (first come, first served)",
     [(1, 5, 5, 0), (2, 1, 1, 0)], [(0, 4, 6, 2)], 4, 13),
    ("2 running, max_batch 3: one slot, so admit request 2 only", [(2, 1, 2, 0), (3, 1, 2, 0)],
     [(0, 2, 9, 3), (1, 2, 9, 5)], 3, 100),
    ("request 0 makes its last token and request 1 its fourth; request 2 (max_new 1) retires right after its "
     "prefill, request 3 stays", [(2, 2, 1, 0), (3, 2, 3, 0)], [(0, 3, 5, 4), (1, 3, 5, 3)], 4, 100),
    ("request 0 finishes this step but holds its 8 tokens while the step runs: request 1 (8 more) does not fit 12",
     [(1, 4, 4, 0)], [(0, 3, 5, 4)], 4, 12),
    ("the budget counts prompt + max_new of every request: 12 reserved + 8 > 16, so request 1 waits",
     [(1, 2, 6, 0)], [(0, 2, 10, 3)], 4, 16),
    ("an empty batch admits from the front of the queue, in order, until max_batch",
     [(0, 3, 4, 0), (1, 3, 2, 0), (2, 3, 2, 0)], [], 2, 100),
    ("nothing waiting: decode and retire only", [], [(0, 1, 3, 2), (1, 1, 3, 1)], 4, 100),
]


def _summary(result) -> tuple[list[int], dict[int, int], dict[int, int]]:
    """(waiting ids in order, running id → made, retired id → made) of a (waiting, running, retired) result."""
    waiting, running, retired = result
    return ([r["id"] for r in waiting], {r["id"]: r["made"] for r in running}, {r["id"]: r["made"] for r in retired})


def check_scheduler_step(scheduler_step) -> None:
    """Exercise 10.7: one continuous-batching step (admit FIFO under max_batch and the token budget, decode, retire)."""
    import copy

    import numpy as np

    from llmlab.serving import batching

    with Check("Exercise 10.7 scheduler_step") as c:
        for case, waiting, running, max_batch, budget in _SCHEDULER_CASES:
            args = (_requests(waiting), _requests(running), max_batch, budget)
            got = c.call(scheduler_step, *copy.deepcopy(args), case=case)
            c.that(isinstance(got, tuple) and len(got) == 3 and all(isinstance(x, list) for x in got), case,
                   f"expected a tuple of three lists (waiting, running, retired), got {type(got).__name__}")
            try:
                mine = _summary(got)
            except (KeyError, TypeError) as exc:
                c.fail(case, f"each list must hold request dicts with 'id' and 'made', got {exc!r}")
            want = _summary(batching.continuous_step(*args))
            for name, g, w in zip(("waiting (ids, in order)", "running (id: made)", "retired (id: made)"), mine, want):
                c.that(g == w, case, f"{name}: expected {w}, got {g}")
        case = "driving the simulator: 40 Poisson requests, max_batch 4, a budget of 40 tokens"
        rng = np.random.default_rng(3)
        trace = (batching.poisson_arrivals(40, 2.0, seed=3), rng.integers(1, 12, 40),
                 batching.linear_step_time(0.05, 0.01))
        kwargs = {"max_batch": 4, "prefill_time": 0.02, "prompt_tokens": rng.integers(1, 20, 40), "token_budget": 40}
        try:
            got = batching.simulate("continuous", *trace, scheduler=scheduler_step, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the learner's scheduler made the simulation fail
            c.fail(case, f"the simulation with your scheduler_step raised {type(exc).__name__}: {exc}")
        want = batching.simulate("continuous", *trace, **kwargs)
        c.that(np.allclose(got.finish, want.finish, equal_nan=False), case,
               f"finish times differ: expected mean {want.finish.mean():.3f} s, got {np.nanmean(got.finish):.3f} s")
