"""pass@k estimators, code extraction and the sandboxed runner."""

from __future__ import annotations

import math
import os

import pytest

from llmlab.evaluation import code as C
from llmlab.tasks import coding


def test_pass_at_k_matches_the_combinatorial_formula():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (10, 0, 3), (10, 10, 1), (5, 2, 5), (200, 13, 10)]:
        exact = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert C.pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
    assert C.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert C.pass_at_k(10, 8, 3) == 1.0  # fewer than k failures: some sample of k must pass


def test_pass_at_k_is_stable_where_binomials_overflow_floats():
    value = C.pass_at_k(5000, 10, 100)
    assert 0 < value < 1 and value == pytest.approx(1 - math.comb(4990, 100) / math.comb(5000, 100), rel=1e-9)


def test_biased_estimator_underestimates():
    assert C.pass_at_k_biased(10, 3, 1) == pytest.approx(C.pass_at_k(10, 3, 1))
    assert C.pass_at_k_biased(10, 3, 5) < C.pass_at_k(10, 3, 5)


def test_pass_at_k_bad_input():
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 10\], got 11"):
        C.pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match=r"c must be an int in \[0, 10\], got 12"):
        C.pass_at_k(10, 12, 1)
    with pytest.raises(TypeError, match="k must be an int"):
        C.pass_at_k(10, 3, 1.0)
    with pytest.raises(ValueError, match="results must have at least one item"):
        C.mean_pass_at_k([], 1)
    assert C.mean_pass_at_k([[True, False], [False, False]], 1) == pytest.approx(0.25)


def test_extract_code():
    assert C.extract_code("Sure!\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1"
    assert C.extract_code("```\nx = 1\n```") == "x = 1"
    assert C.extract_code("```python\nx = 1") == "x = 1"  # cut off before the closing fence
    assert C.extract_code("x = 2") == "x = 2"


def test_runner_passes_and_fails():
    assert C.run_candidate("def f(x):\n    return x + 1", "assert f(1) == 2").passed
    failed = C.run_candidate("def f(x):\n    return x", "assert f(1) == 2")
    assert not failed.passed and failed.status == "failed"
    broken = C.run_candidate("def f(x) return x", "assert f(1) == 2")
    assert broken.status == "error" and "SyntaxError" in broken.output


def test_runner_stops_loops_memory_network_processes_and_outside_writes(tmp_path):
    assert C.run_candidate("while True:\n    pass", "pass", timeout=1).status == "timeout"
    assert "MemoryError" in C.run_candidate("x = bytearray(2 ** 31)", "pass", memory_mb=256).output
    for snippet in ["import socket\nsocket.create_connection(('127.0.0.1', 9))", "import os\nos.system('true')",
                    "import subprocess\nsubprocess.run(['true'])"]:
        result = C.run_candidate(snippet, "pass")
        assert not result.passed and "not allowed in the llmlab sandbox" in result.output
    target = tmp_path / "escaped.txt"
    result = C.run_candidate(f"open({str(target)!r}, 'w').write('x')", "pass")
    assert not result.passed and not target.exists()
    assert C.run_candidate("open('inside.txt', 'w').write('x')\nassert open('inside.txt').read() == 'x'",
                           "pass").passed


def test_runner_environment_is_isolated(monkeypatch):
    monkeypatch.setenv("LLMLAB_SECRET_FOR_TEST", "1")
    assert C.run_candidate("import os", "assert 'LLMLAB_SECRET_FOR_TEST' not in os.environ").passed
    assert C.run_candidate("import os", f"assert os.getcwd() != {os.getcwd()!r}").passed


def test_runner_bad_input():
    with pytest.raises(ValueError, match=r"timeout must be in \(0, 120\], got 0"):
        C.run_candidate("x = 1", "pass", timeout=0)
    with pytest.raises(ValueError, match="tests must be a non-empty str"):
        C.run_candidate("x = 1", "")


def test_shipped_problems_have_a_passing_reference_and_fail_an_empty_body():
    problems = coding.load_problems()
    assert len(problems) >= 10 and len({p.id for p in problems}) == len(problems)
    for p in problems:
        assert p.entry_point in p.prompt and "```python" in coding.chat_prompt(p)
        assert C.run_candidate(p.prompt + p.solution, p.tests).passed, p.id
        assert not C.run_candidate(p.prompt + "    pass\n", p.tests).passed, p.id


def test_shipped_candidates_cover_every_problem():
    shipped = coding.load_candidates()
    ids = [p.id for p in coding.load_problems()]
    assert sorted(shipped["candidates"]) == sorted(ids)
    assert all(len(c) == shipped["settings"]["n"] for c in shipped["candidates"].values())


def test_run_candidates_keeps_order():
    jobs = [("x = 1", "assert x == 1"), ("x = 2", "assert x == 1"), ("x = 3", "assert x == 3")]
    assert [r.passed for r in C.run_candidates(jobs, timeout=5, workers=2)] == [True, False, True]
    with pytest.raises(ValueError, match="jobs must have at least one item"):
        C.run_candidates([])


def test_sample_replies_gives_n_per_prompt_in_order_and_is_seeded():
    from llmlab.kit import fixtures

    model, tok = fixtures.tiny_model(), fixtures.tiny_tokenizer()
    prompts = ["def f(x):", "a longer prompt, so the batch is left-padded"]
    a = coding.sample_replies(model, tok, prompts, n=3, seed=7, max_new_tokens=6)
    assert len(a) == 6 and all(isinstance(r, str) for r in a)
    assert a == coding.sample_replies(model, tok, prompts, n=3, seed=7, max_new_tokens=6)
    assert a != coding.sample_replies(model, tok, prompts, n=3, seed=8, max_new_tokens=6)
