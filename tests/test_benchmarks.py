"""The benchmark helpers that need no model: the shared writer and chapter 04's table and targets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_quantization  # noqa: E402
import common  # noqa: E402

from llmlab.quantization import Row  # noqa: E402


def test_write_result_names_date_device_and_benchmark(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    out = common.write_result("demo", "# hello", "cpu")
    assert out.parent == tmp_path and out.name.endswith("-cpu-demo.md")
    assert out.read_text(encoding="utf-8") == "# hello\n"
    assert "load average" in common.machine_header("cpu")
    (value, seconds) = common.timed(lambda x: x + 1, 1)
    assert value == 2 and seconds >= 0


def test_quantization_table_and_targets():
    rows = [Row("fp32", 538_000_000, 10.0, 20.0, "a | b"), Row("int8 (own)", 220_000_000, 10.1, 5.0, "x"),
            Row("int8 (bitsandbytes)", 220_000_000, 10.5, 5.0, "x"),
            Row("nf4 (bitsandbytes)", None, None, None, None, "skipped: RuntimeError: no")]
    md = bench_quantization.table_markdown(rows)
    assert "| fp32 | 538 | 10.000 | 20.0 | a / b |" in md and "| nf4 (bitsandbytes) | — | — | — | — |" in md
    targets = {t: (m, ok) for t, m, ok in bench_quantization.target_results(rows)}
    assert targets["int8 (own) ppl ≤ fp32 × 1.02"][1] is True
    assert targets["int8 (bitsandbytes) ppl ≤ fp32 × 1.02"][1] is False
    assert targets["nf4 (bitsandbytes) ppl ≤ fp32 × 1.10"] == ("not measured", None)
    assert targets["|int8 (own) ppl - int8 (bitsandbytes) ppl| ≤ 0.1"][1] is False


@pytest.mark.parametrize("script", sorted(p.name for p in (Path(common.__file__).parent).glob("*.py")))
def test_every_benchmark_script_imports(script):
    """A benchmark that cannot even be imported would only fail at `make bench` time."""
    import importlib

    importlib.import_module(script.removesuffix(".py"))


def test_prompting_report_rates_and_spread():
    import bench_prompting

    res = {"prompts": {"methods": {"zero-shot": [1, 0, 0, 0], "few-shot, 4 demos": [1, 1, 0, 0]},
                       "variants": {"original": [1, 0, 0, 0], "polite": [1, 1, 1, 0]}},
           "injection": {"none": {"violations": [1, 1], "refusals": [0, 0], "example": "PWNED | x"},
                         "filter": {"violations": [0, 0], "refusals": [0, 1], "example": "I can't"}}}
    md = bench_prompting.format_report(res, "header")
    assert "| zero-shot | 4 | 25.0% [" in md and "| few-shot, 4 demos | 4 | 50.0% [" in md
    assert "Spread (best − worst variant), zero-shot: 50.0 points." in md
    assert "| none | 100.0% [100.0%, 100.0%] | 0.0% [0.0%, 0.0%] | 'PWNED / x' |" in md
    assert "| filter | 0.0% [0.0%, 0.0%] | 50.0% [" in md


def test_dspy_report_gains_and_the_vote_line():
    sys.path.insert(0, str(Path(common.__file__).resolve().parent.parent))
    from benchmarks import bench_dspy

    base = {"scores": [0.0] * 10, "unseen_scores": [0.0] * 4, "failures": 0, "compile_s": 0.0}
    results = {"zero-shot, JSONAdapter + constrained (un-optimized)": base,
               "KNNFewShot": {"scores": [1.0] * 5 + [0.0] * 5, "unseen_scores": [1.0, 0.0, 0.0, 0.0],
                              "failures": 0, "compile_s": 2.0},
               "kNN vote of the 4 nearest training labels, no LM": {
                   "scores": [1.0] * 10, "unseen_scores": [1.0, 0.0, 0.0, 0.0], "failures": 0, "compile_s": 0.0}}
    md = bench_dspy.format_report(results, "header")
    assert "| KNNFewShot | 10 | 50.0% | +50.0 [" in md and "| 25.0% | +25.0 [+0.0, +75.0] | 0 | 2.0 |" in md
    assert "test: -50.0 points" in md and "does worse than their vote" in md
    assert "unseen: +0.0 points [95% CI +0.0, +0.0]: the LM adds nothing measurable" in md
