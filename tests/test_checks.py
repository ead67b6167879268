"""Every exercise check is covered by the check-can-fail tests, and the check helper diagnoses well."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch

import llmlab.checks
from llmlab.checks import Check, CheckFailed

TESTS = Path(__file__).parent


def all_checks() -> dict[str, object]:
    """Every check_* function in llmlab.checks.chNN modules, by 'chNN.check_name'."""
    found = {}
    for info in pkgutil.iter_modules(llmlab.checks.__path__):
        if info.name.startswith("ch"):
            module = importlib.import_module(f"llmlab.checks.{info.name}")
            for name, fn in inspect.getmembers(module, inspect.isfunction):
                if name.startswith("check_") and fn.__module__ == module.__name__:
                    found[f"{info.name}.{name}"] = fn
    return found


def collected_cases() -> dict[object, int]:
    """Check functions in the CASES lists (CASES, LOOP_CASES...) of tests/test_checks_chNN.py, with wrong answers."""
    covered = {}
    for path in sorted(TESTS.glob("test_checks_ch*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name in (n for n in vars(module) if n == "CASES" or n.endswith("_CASES")):
            for case in getattr(module, name):
                covered[case.check] = len(case.wrong)
    return covered


def test_every_check_has_solution_stub_and_wrong_answer_tests():
    checks, covered = all_checks(), collected_cases()
    assert checks, "no exercise checks found in llmlab.checks"
    missing = [name for name, fn in checks.items() if fn not in covered]
    assert not missing, f"checks without check-can-fail tests: {missing}"
    no_wrong = [name for name, fn in checks.items() if covered[fn] < 1]
    assert not no_wrong, f"checks without a typical wrong answer: {no_wrong}"


def test_close_reports_shape_nan_and_first_difference():
    c = Check("demo")
    with pytest.raises(CheckFailed, match=r"shape: expected \(2, 3\), got \(3,\)"):
        c.close(torch.zeros(3), torch.zeros(2, 3), case="shape")
    with pytest.raises(CheckFailed, match=r"got NaN at index \(1,\)"):
        c.close(torch.tensor([0.0, float("nan")]), torch.zeros(2), case="nan")
    with pytest.raises(CheckFailed, match=r"1 of 3 values differ; first at index \(2,\): expected 0, got 1"):
        c.close(np.array([0.0, 0.0, 1.0]), np.zeros(3), case="values")
    with pytest.raises(CheckFailed, match="expected a torch.Tensor, got list"):
        c.close([0.0], torch.zeros(1), case="type")
    with pytest.raises(CheckFailed, match="dtype: expected torch.int64, got torch.float32"):
        c.close(torch.zeros(2), torch.zeros(2, dtype=torch.long), case="dtype", check_dtype=True)


def test_close_accepts_matching_infinities_and_scalars():
    c = Check("demo")
    c.close(torch.tensor([-float("inf"), 1.0]), torch.tensor([-float("inf"), 1.0]), case="inf")
    c.close(torch.tensor(0.5), 0.5, case="scalar tensor")
    with pytest.raises(CheckFailed, match="expected 0.5, got 0.6"):
        c.close(0.6, 0.5, case="scalar")


def test_call_explains_crashes_and_non_functions():
    c = Check("demo")
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        c.call(lambda: 1 / 0, case="crash")
    with pytest.raises(CheckFailed, match="expected a function, got int"):
        c.call(3, case="not callable")


def test_pass_line_printed_only_when_all_cases_pass(capsys):
    with Check("Exercise 99.1 demo") as c:
        c.equal(2, 2, case="a")
        c.that(True, case="b", message="never")
    assert capsys.readouterr().out.strip() == "✔ Exercise 99.1 demo: passed (2 cases)"
    with pytest.raises(CheckFailed, match="Exercise 99.1 demo — case a: expected 3, got 2"):
        with Check("Exercise 99.1 demo") as c:
            c.equal(2, 3, case="a")
    assert "✔" not in capsys.readouterr().out
