"""Shared harness proving each exercise check passes on a solution and fails on a stub and wrong answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pytest

from llmlab.checks import CheckFailed


@dataclass
class CheckCase:
    """One exercise check with a correct solution, typical wrong answers and extra arguments."""

    check: Callable
    solution: Callable
    wrong: list[Callable] = field(default_factory=list)
    args: tuple = ()


def stub(*args, **kwargs):
    """What the generated exercise notebook contains before the learner writes anything."""
    raise NotImplementedError("Exercise: write your code here")


def make_tests(cases: list[CheckCase]):
    """Three parametrized tests: pass on the solution, fail on the stub, fail on each wrong answer."""
    ids = [c.check.__name__ for c in cases]
    wrong = [(c, w) for c in cases for w in c.wrong]
    wrong_ids = [f"{c.check.__name__}-{getattr(w, '__name__', 'wrong')}" for c, w in wrong]

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_check_passes_on_solution(case, capsys):
        case.check(case.solution, *case.args)
        assert "✔" in capsys.readouterr().out

    @pytest.mark.parametrize("case", cases, ids=ids)
    def test_check_fails_on_stub(case):
        with pytest.raises(CheckFailed, match="not implemented yet"):
            case.check(stub, *case.args)

    @pytest.mark.parametrize("case,wrong_answer", wrong, ids=wrong_ids)
    def test_check_fails_on_wrong_answer(case, wrong_answer):
        with pytest.raises(CheckFailed):
            case.check(wrong_answer, *case.args)

    return test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer
