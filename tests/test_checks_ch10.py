"""Check-can-fail tests for chapter 10's exercise checks."""

import math

import pytest
from checks_harness import CheckCase, make_tests

from llmlab.checks import CheckFailed, ch10
from llmlab.serving import batching, cost, latency, prefix_cache, roofline, utilization


# 10.1 MBU
def mbu_forgets_bytes_per_param(params, bytes_per_param, tokens_per_s, bandwidth_gb_s):
    return params * tokens_per_s / (bandwidth_gb_s * 1e9)


def mbu_in_bits(params, bytes_per_param, tokens_per_s, bandwidth_gb_s):
    return params * bytes_per_param * 8 * tokens_per_s / (bandwidth_gb_s * 1e9)


def mbu_gib(params, bytes_per_param, tokens_per_s, bandwidth_gb_s):
    return params * bytes_per_param * tokens_per_s / (bandwidth_gb_s * 2**30)


def mbu_percent(params, bytes_per_param, tokens_per_s, bandwidth_gb_s):
    return 100 * params * bytes_per_param * tokens_per_s / (bandwidth_gb_s * 1e9)


def mbu_forgets_gb(params, bytes_per_param, tokens_per_s, bandwidth_gb_s):
    return params * bytes_per_param * tokens_per_s / bandwidth_gb_s


# 10.2 percentile
def percentile_unsorted(values, q):
    rank = q / 100 * (len(values) - 1)
    lo, hi = math.floor(rank), min(math.floor(rank) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (rank - lo)


def percentile_nearest_rank(values, q):
    data = sorted(values)
    return data[round(q / 100 * (len(data) - 1))]


def percentile_floor(values, q):
    data = sorted(values)
    return data[int(q / 100 * (len(data) - 1))]


def percentile_rank_off_by_one(values, q):
    data = sorted(values)
    rank = min(q / 100 * len(data), len(data) - 1)
    lo, hi = math.floor(rank), min(math.floor(rank) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def percentile_upper_middle(values, q):
    data = sorted(values)
    return data[min(int(q / 100 * len(data)), len(data) - 1)]


def percentile_ceil(values, q):
    data = sorted(values)
    return data[math.ceil(q / 100 * (len(data) - 1))]


def percentile_exclusive_method(values, q):
    data = sorted(values)                                            # rank q/100 × (n + 1), 1-based (Excel's EXC)
    rank = min(max(q / 100 * (len(data) + 1) - 1, 0), len(data) - 1)
    lo, hi = math.floor(rank), min(math.floor(rank) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (rank - lo)


def percentile_numpy(values, q):
    import numpy as np
    return float(np.percentile(values, q))                            # the statement says: do not call numpy


# 10.3 goodput
def goodput_either_slo(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t <= ttft_slo or p <= tpot_slo for t, p in zip(ttfts, tpots)) / duration


def goodput_strict(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t < ttft_slo and p < tpot_slo for t, p in zip(ttfts, tpots)) / duration


def goodput_strict_ttft(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t < ttft_slo and p <= tpot_slo for t, p in zip(ttfts, tpots)) / duration


def goodput_strict_tpot(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t <= ttft_slo and p < tpot_slo for t, p in zip(ttfts, tpots)) / duration


def goodput_count(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t <= ttft_slo and p <= tpot_slo for t, p in zip(ttfts, tpots))


def goodput_fraction(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t <= ttft_slo and p <= tpot_slo for t, p in zip(ttfts, tpots)) / len(ttfts)


def goodput_is_throughput(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return len(ttfts) / duration


def goodput_ttft_only(ttfts, tpots, ttft_slo, tpot_slo, duration):
    return sum(t <= ttft_slo for t in ttfts) / duration


# 10.4 prefill tokens
def _lcp(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def prefill_only_first_request(requests):
    return [len(r) if i == 0 else max(len(r) - _lcp(r, requests[0]), 1) for i, r in enumerate(requests)]


def prefill_without_minimum_one(requests):
    return [len(r) - max([_lcp(r, p) for p in requests[:i]], default=0) for i, r in enumerate(requests)]


def prefill_whole_prompts_only(requests):
    out = []
    for i, r in enumerate(requests):
        reused = max([len(p) for p in requests[:i] if r[:len(p)] == p and len(p) < len(r)], default=0)
        out.append(len(r) - reused)
    return out


def prefill_counts_cached(requests):
    return [max([_lcp(r, p) for p in requests[:i]], default=0) for i, r in enumerate(requests)]


def prefill_lcp_off_by_one(requests):
    return [max(len(r) - max([_lcp(r, p) + 1 for p in requests[:i]], default=0), 1) for i, r in enumerate(requests)]


def prefill_previous_request_only(requests):
    return [len(r) if i == 0 else max(len(r) - _lcp(r, requests[i - 1]), 1) for i, r in enumerate(requests)]


def prefill_shared_tokens_as_a_set(requests):
    return [max(len(r) - max([len(set(r) & set(p)) for p in requests[:i]], default=0), 1)
            for i, r in enumerate(requests)]


# 10.5 matmul intensity
def intensity_no_output(m, n, k, b):
    return 2 * m * n * k / ((m * k + k * n) * b)


def intensity_no_factor_two(m, n, k, b):
    return m * n * k / ((m * k + k * n + m * n) * b)


def intensity_bits(m, n, k, b):
    return 2 * m * n * k / ((m * k + k * n + m * n) * b * 8)


def intensity_weights_only(m, n, k, b):
    return 2 * m * n * k / (k * n * b)


def intensity_output_as_k_by_n(m, n, k, b):
    return 2 * m * n * k / ((m * k + 2 * k * n) * b)                 # counts the weight twice, not the (m, n) output


# 10.6 cost
def cost_per_thousand(dollars_per_hour, tokens_per_s):
    return dollars_per_hour / (tokens_per_s * 3600) * 1e3


def cost_per_minute(dollars_per_hour, tokens_per_s):
    return dollars_per_hour / (tokens_per_s * 60) * 1e6


def cost_forgets_hours(dollars_per_hour, tokens_per_s):
    return dollars_per_hour / tokens_per_s * 1e6


# 10.7 scheduler step: one configurable scheduler, each flag a mistake a learner makes
def _scheduler(name: str, budget: str = "reserved", cmp: str = "<=", batch_cmp: str = "<", fifo: str = "stop",
               retire: str = "done", made_on_admit: int = 1, order: str = "admit-decode-retire"):
    def reservation(r):
        return {"reserved": r["prompt"] + r["max_new"], "per-request": r["prompt"] + r["max_new"],
                "prompt": r["prompt"], "used": r["prompt"] + r["made"]}[budget]

    def fits(reserved, r, budget_):
        total = reservation(r) if budget == "per-request" else reserved + reservation(r)
        return {"<=": total <= budget_, "<": total < budget_, "none": True}[cmp]

    def finished(r):
        return {"done": r["made"] >= r["max_new"], "early": r["made"] >= r["max_new"] - 1,
                "late": r["made"] > r["max_new"]}[retire]

    def step(waiting, running, max_batch, token_budget):
        waiting, running = [dict(r) for r in waiting], [dict(r) for r in running]
        retired_first = []
        if order == "decode-retire-admit":
            for r in running:
                r["made"] += 1
            retired_first = [r for r in running if finished(r)]
            running = [r for r in running if not finished(r)]
        if order == "retire-before-decode":  # retires what is one token from done, without making that token
            retired_first = [r for r in running if r["made"] + 1 >= r["max_new"]]
        reserved = sum(reservation(r) for r in running)
        admitted, queue = [], waiting if fifo != "lifo" else waiting[::-1]
        skipped = []
        while queue:
            slots_ok = (len(running) + len(admitted) < max_batch) if batch_cmp == "<" else (
                len(running) + len(admitted) <= max_batch)
            if not slots_ok:
                break
            if not fits(reserved, queue[0], token_budget):
                if fifo == "skip":
                    skipped.append(queue.pop(0))
                    continue
                break
            r = queue.pop(0)
            r["made"] = made_on_admit
            reserved += reservation(r)
            admitted.append(r)
        rest = skipped + queue
        if fifo == "lifo":
            rest = rest[::-1]
        if order == "decode-retire-admit":
            return (rest, running + [r for r in admitted if not finished(r)],
                    retired_first + [r for r in admitted if finished(r)])
        if order == "retire-before-decode":
            kept = [r for r in running if all(r is not d for d in retired_first)]
            for r in kept:
                r["made"] += 1
            return (rest, [r for r in kept + admitted if not finished(r)],
                    retired_first + [r for r in admitted if finished(r)])
        for r in running:
            r["made"] += 1
        if order == "admitted-not-retired":
            return rest, [r for r in running if not finished(r)] + admitted, [r for r in running if finished(r)]
        batch = running + admitted
        return rest, [r for r in batch if not finished(r)], [r for r in batch if finished(r)]

    step.__name__ = name
    return step


SCHEDULER_WRONG = [
    _scheduler("sched_ignores_budget", cmp="none"),
    _scheduler("sched_budget_exclusive", cmp="<"),
    _scheduler("sched_budget_prompt_only", budget="prompt"),
    _scheduler("sched_budget_counts_tokens_made", budget="used"),
    _scheduler("sched_budget_per_request_not_batch", budget="per-request"),
    _scheduler("sched_max_batch_off_by_one", batch_cmp="<="),
    _scheduler("sched_skips_ahead_fifo_violated", fifo="skip"),
    _scheduler("sched_lifo", fifo="lifo"),
    _scheduler("sched_retires_one_token_early", retire="early"),
    _scheduler("sched_retires_one_step_late", retire="late"),
    _scheduler("sched_retires_before_the_last_token", order="retire-before-decode"),
    _scheduler("sched_admitted_also_decode", made_on_admit=2),
    _scheduler("sched_prefill_makes_no_token", made_on_admit=0),
    _scheduler("sched_never_retires_admitted", order="admitted-not-retired"),
    _scheduler("sched_frees_the_budget_before_admitting", order="decode-retire-admit"),
]


CASES = [
    CheckCase(ch10.check_mbu, utilization.mbu,
              [mbu_forgets_bytes_per_param, mbu_in_bits, mbu_gib, mbu_percent, mbu_forgets_gb]),
    CheckCase(ch10.check_percentile, latency.percentile,
              [percentile_unsorted, percentile_nearest_rank, percentile_floor, percentile_rank_off_by_one,
               percentile_upper_middle, percentile_ceil, percentile_exclusive_method,
               percentile_numpy]),
    CheckCase(ch10.check_goodput,
              lambda ttfts, tpots, ts, ps, d: latency.goodput(ttfts, tpots, latency.SLO(ts, ps), d),
              [goodput_either_slo, goodput_strict, goodput_count, goodput_fraction, goodput_is_throughput,
               goodput_ttft_only, goodput_strict_ttft, goodput_strict_tpot]),
    CheckCase(ch10.check_prefill_tokens, prefix_cache.prefill_tokens,
              [prefill_only_first_request, prefill_without_minimum_one, prefill_whole_prompts_only,
               prefill_counts_cached, prefill_lcp_off_by_one,
               prefill_previous_request_only, prefill_shared_tokens_as_a_set]),
    CheckCase(ch10.check_matmul_intensity, roofline.matmul_intensity,
              [intensity_no_output, intensity_no_factor_two, intensity_bits, intensity_weights_only,
               intensity_output_as_k_by_n]),
    CheckCase(ch10.check_cost_per_million, cost.cost_per_million_tokens,
              [cost_per_thousand, cost_per_minute, cost_forgets_hours]),
    CheckCase(ch10.check_scheduler_step, batching.continuous_step, SCHEDULER_WRONG),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


@pytest.mark.parametrize("check, wrong, words", [
    (ch10.check_mbu, mbu_forgets_bytes_per_param, "bytes per parameter"),
    (ch10.check_mbu, mbu_percent, "not a percentage"),
    (ch10.check_mbu, mbu_gib, "GiB"),
    (ch10.check_percentile, percentile_floor, "interpolate"),
    (ch10.check_percentile, percentile_unsorted, "sort the values"),
    (ch10.check_goodput, goodput_either_slo, "both SLOs"),
    (ch10.check_goodput, goodput_strict, "<="),
    (ch10.check_prefill_tokens, prefill_without_minimum_one, "at least one token"),
    (ch10.check_matmul_intensity, intensity_no_output, "output write"),
    (ch10.check_matmul_intensity, intensity_no_factor_two, "2 FLOPs"),
    (ch10.check_cost_per_million, cost_per_thousand, "not per thousand"),
    (ch10.check_scheduler_step, SCHEDULER_WRONG[6], "may not skip ahead"),
    (ch10.check_scheduler_step, SCHEDULER_WRONG[1], "fits the budget exactly"),
])

def test_failure_messages_speak_learner_words(check, wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check(wrong)


def test_the_configurable_scheduler_is_right_when_no_mistake_is_switched_on(capsys):
    ch10.check_scheduler_step(_scheduler("sched_right"))
    assert "✔" in capsys.readouterr().out


def test_a_scheduler_that_mutates_its_inputs_in_place_still_passes(capsys):
    def in_place(waiting, running, max_batch, token_budget):
        reserved = sum(r["prompt"] + r["max_new"] for r in running)
        for r in running:
            r["made"] += 1
        while waiting and len(running) < max_batch and reserved + waiting[0]["prompt"] + waiting[0]["max_new"] <= \
                token_budget:
            r = waiting.pop(0)
            r["made"] = 1
            reserved += r["prompt"] + r["max_new"]
            running.append(r)
        retired = [r for r in running if r["made"] == r["max_new"]]
        return waiting, [r for r in running if r not in retired], retired

    ch10.check_scheduler_step(in_place)
    assert "✔" in capsys.readouterr().out
