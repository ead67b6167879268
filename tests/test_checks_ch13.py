"""Check-can-fail tests for chapter 13's exercise checks."""

from checks_harness import CheckCase, make_tests  # noqa: F401

from llmlab.checks import ch13  # noqa: F401

# ------------------------------------------------------------------ first part: FIRST_CASES = [CheckCase(...), ...]
FIRST_CASES: list = []


# ------------------------------------------------------------------ second part: SECOND_CASES = [CheckCase(...), ...]
SECOND_CASES: list = []


test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(
    FIRST_CASES + SECOND_CASES)
