"""The classroom load benchmark's pieces that need no hub: the output check, the percentiles and the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_classroom_load as load  # noqa: E402

GOOD = {"load": (9.0, "torch threads 1"), "next token": (0.3, "answer ' Paris'"), "generate 64": (4.0, "generated 64")}


def with_cell(name: str, text: str) -> dict:
    """GOOD with one cell's output replaced."""
    return {**GOOD, name: (1.0, text)}


def test_outputs_ok_accepts_the_right_outputs_and_rejects_each_wrong_one():
    assert load.outputs_ok(GOOD, 1)
    assert load.outputs_ok({**GOOD, "load": (9.0, "a warning\ntorch threads 1\n")}, 1)  # extra lines are fine
    assert load.outputs_ok(with_cell("load", "torch threads 2"), 0)  # 0: torch's default, any count
    for wrong in [with_cell("load", "torch threads 2"), with_cell("load", "torch threads 16"),
                  with_cell("next token", "answer ' London'"), with_cell("generate 64", "generated 63"),
                  with_cell("generate 64", "NameError: name 'sampling' is not defined")]:
        assert not load.outputs_ok(wrong, 1), wrong


def test_percentiles_interpolate_and_max_is_the_slowest():
    stats = load.percentiles([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats == {"p50": 3.0, "p95": pytest.approx(4.8), "max": 5.0}
    assert load.percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "max": 7.0}


def test_report_has_a_row_per_round_and_the_threads_comparison():
    def row(n: int, threads: int) -> dict:
        stats = {c: {"p50": 1.0 * n, "p95": 2.0 * n, "max": 3.0 * n} for c in [*load.CELLS, "all cells"]}
        return dict(n=n, threads=threads, stats=stats, cpu_mean=90.0, cpu_max=100.0, mem_peak_mb=5000.0,
                    mem_before_mb=1000.0, kernel_private_mb=340.0, load_before=(0.5, 0.4, 0.3),
                    printed=["generated 64"])

    args = argparse.Namespace(threads=1, compare_at=2)
    text = load.report("header", args, [row(1, 1), row(2, 1)], "last size (2) done", [row(2, 1), row(2, 0)])
    assert "| 2 | 2.0 / 4.0 / 6.0 |" in text and "| 0 | 2.0 / 4.0 / 6.0 |" in text
    assert "## Threads per kernel at N=2" in text and "LLMLAB_KERNEL_THREADS=1" in text
    assert "90 / 100 | 5000 (1000) | 340 | 0.50 |" in text
