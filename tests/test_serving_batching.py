"""llmlab.serving.batching: the static / dynamic / continuous batching simulator."""

import numpy as np
import pytest

from llmlab.serving import batching as B

STEP = B.linear_step_time(0.05, 0.005)


def test_poisson_arrivals_rate_and_seed():
    a = B.poisson_arrivals(4000, 5.0, seed=1)
    assert np.all(np.diff(a) > 0) and 4000 / a[-1] == pytest.approx(5.0, rel=0.05)
    assert np.array_equal(a, B.poisson_arrivals(4000, 5.0, seed=1))


def test_one_request_alone_is_the_same_for_every_policy():
    for policy in B.POLICIES:
        r = B.simulate(policy, [1.0], [5], STEP, max_batch=4, prefill_time=0.1, window=0.0)
        assert r.ttft[0] == pytest.approx(0.1) and r.latency[0] == pytest.approx(0.1 + 4 * STEP(1))


def test_static_waits_for_a_full_batch_dynamic_for_the_window():
    arr, out = [0.0, 1.0, 2.0], [2, 2, 2]
    static = B.simulate("static", arr, out, STEP, max_batch=2)
    assert static.first_token[0] == pytest.approx(1.0)  # waits for the second request
    dynamic = B.simulate("dynamic", arr, out, STEP, max_batch=2, window=0.25)
    assert dynamic.first_token[0] == pytest.approx(0.25)


def test_continuous_lets_short_requests_leave_and_new_ones_join():
    arr, out = [0.0, 0.0, 0.01], [2, 10, 2]
    cont = B.simulate("continuous", arr, out, STEP, max_batch=2)
    static = B.simulate("static", arr, out, STEP, max_batch=2)
    assert cont.finish[2] < static.finish[2]  # joins when request 0 leaves, not after request 1 is done
    assert np.isfinite(cont.finish).all() and (cont.finish >= cont.first_token).all()


def test_continuous_beats_static_under_load():
    arr = B.poisson_arrivals(300, 4.0, seed=0)
    out = np.random.default_rng(0).integers(4, 64, 300)
    res = B.compare_policies(arr, out, STEP, max_batch=16, prefill_time=0.01, window=0.5)
    assert res["continuous"].throughput > res["static"].throughput
    assert np.median(res["continuous"].latency) < np.median(res["static"].latency)
    assert res["continuous"].output_tokens.sum() == out.sum()
    assert set(res["continuous"].summary()) >= {"throughput", "ttft p50", "latency p99"}


def test_fit_step_time_recovers_a_line():
    base, per = B.fit_step_time([1, 2, 4, 8], [0.05 + 0.01 * b for b in (1, 2, 4, 8)])
    assert base == pytest.approx(0.05) and per == pytest.approx(0.01)


@pytest.mark.parametrize("call, match", [
    (lambda: B.simulate("greedy", [0.0], [1], STEP), "policy must be one of"),
    (lambda: B.simulate("static", [1.0, 0.0], [1, 1], STEP), "sorted"),
    (lambda: B.simulate("static", [0.0], [0], STEP), "output_tokens"),
    (lambda: B.simulate("static", [0.0], [1], STEP, max_batch=0), "max_batch"),
    (lambda: B.poisson_arrivals(5, 0), "rate"),
    (lambda: B.fit_step_time([1], [0.1]), "at least 2"),
])
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def _req(i, prompt, max_new, made=0):
    return {"id": i, "prompt": prompt, "max_new": max_new, "made": made}


def test_continuous_step_admits_fifo_within_the_budget_decodes_and_retires():
    running = [_req(0, 3, 5, made=4), _req(1, 3, 5, made=3)]  # 16 tokens reserved
    waiting = [_req(2, 2, 1), _req(3, 2, 3), _req(4, 9, 9), _req(5, 1, 1)]
    w, r, done = B.continuous_step(waiting, running, max_batch=8, token_budget=24)
    assert [x["id"] for x in w] == [4, 5]  # 4 does not fit (16 + 3 + 5 + 18 > 24), and 5 may not skip ahead of it
    assert {x["id"]: x["made"] for x in r} == {1: 4, 3: 1}
    assert sorted(x["id"] for x in done) == [0, 2]  # 0 made its last token; 2 needed only its first
    assert running[0]["made"] == 4 and len(waiting) == 4  # the inputs are left alone
    assert B.continuous_step([_req(0, 1, 2)], [], max_batch=1, token_budget=3)[1][0]["made"] == 1  # exact fit
    assert B.continuous_step([_req(0, 1, 2), _req(1, 1, 1)], [], max_batch=1, token_budget=9)[0][0]["id"] == 1


def test_a_token_budget_slows_admission_and_is_validated():
    arr, out = [0.0] * 4, [4, 4, 4, 4]
    free = B.simulate("continuous", arr, out, STEP, max_batch=4, prompt_tokens=[4] * 4)
    tight = B.simulate("continuous", arr, out, STEP, max_batch=4, prompt_tokens=[4] * 4, token_budget=16)
    assert np.isfinite(tight.finish).all() and tight.finish.max() > free.finish.max()
    with pytest.raises(ValueError, match="token_budget"):
        B.simulate("continuous", arr, out, STEP, prompt_tokens=[4] * 4, token_budget=7)
    stuck = lambda waiting, running, max_batch, budget: (waiting, running, [])  # noqa: E731 - admits nothing
    with pytest.raises(RuntimeError, match="progress"):
        B.simulate("continuous", arr, out, STEP, scheduler=stuck)
