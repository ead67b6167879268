"""Checks for chapter 13 exercises."""

from __future__ import annotations

from llmlab.checks import Check  # noqa: F401 - used by the checks below

# ------ first part's checks go here (13.1-13.2: AUROC, SelfCheck)


def _float(c: Check, got, case: str) -> float:
    """The learner's result as a Python float; a tensor, an array or a bool is a failure that says so."""
    import numpy as np
    import torch

    c.that(not isinstance(got, (torch.Tensor, np.ndarray)), case,
           f"expected a Python float, got a {type(got).__name__} (call float(...) or .item() on it)")
    c.that(isinstance(got, (int, float)) and not isinstance(got, bool), case,
           f"expected a float, got {type(got).__name__} {got!r:.60}")
    return float(got)


def check_auroc(auroc) -> None:
    """Exercise 13.1: P(score of a random positive > score of a random negative), ties half; one class -> ValueError."""
    from llmlab.evaluation import roc as _roc

    cases = {
        # 2 positives, 3 negatives, one positive tied with a negative: 4.5 of 6 pairs
        "ties across classes: scores [0.9, 0.5, 0.5, 0.2, 0.7], labels [1, 1, 0, 0, 0]":
            ([0.9, 0.5, 0.5, 0.2, 0.7], [1, 1, 0, 0, 0]),
        "log-probs (all below 0), positives on top, unsorted": ([-0.1, -2.0, -0.5, -3.0, -2.5], [1, 0, 1, 0, 0]),
        "bool labels, 3 positives, 2 negatives, no ties": ([0.3, 0.8, 0.1, 0.6, 0.4], [True, True, False, False, True]),
        "a worse-than-chance score (positives lower), 1 positive 4 negatives": ([0.2, 0.5, 0.9, 0.1, 0.7],
                                                                              [1, 0, 0, 0, 0]),
        "every score tied": ([0.4, 0.4, 0.4, 0.4], [1, 0, 1, 0]),
    }
    with Check("Exercise 13.1 auroc") as c:
        for case, (scores, labels) in cases.items():
            got = _float(c, c.call(auroc, list(scores), list(labels), case=case), case)
            c.close(got, _roc.auroc(scores, labels), case=case, atol=1e-9)
        for case, labels in (("all labels 1", [1, 1, 1]), ("all labels 0", [0, 0, 0])):
            c.cases.append(case)
            try:
                auroc([0.2, 0.5, 0.9], labels)
            except ValueError as exc:
                c.that("labels" in str(exc), case, f"the ValueError should name 'labels', got: {exc}")
                continue
            except NotImplementedError:
                c.call(auroc, [0.2, 0.5, 0.9], labels, case=case)
            except Exception as exc:  # noqa: BLE001 - any other error is the wrong kind
                c.fail(case, f"expected a ValueError naming 'labels' (AUROC needs both classes), got "
                             f"{type(exc).__name__}: {exc}")
            c.fail(case, "expected a ValueError naming 'labels' (AUROC needs both classes), but nothing was raised")


def check_selfcheck_exact(selfcheck_exact) -> None:
    """Exercise 13.2a: share of the N samples that differ from the answer after the kit's normalize."""
    from llmlab.evaluation import hallucination as _H

    cases = {
        "1 of 4 samples agrees once normalised": ("Paris.", ["paris", "Lyon", "Nice", "Rome"]),
        "3 of 5 agree (case, punctuation, article)": ("The Ottawa", ["ottawa", "Ottawa.", "Toronto", "OTTAWA",
                                                                     "Montreal"]),
        "no sample agrees": ("I don't know", ["42 euros", "In 1987", "Mount Tirrowen"]),
        "one sample, the same words": ("Blue", ["blue!"]),
    }
    with Check("Exercise 13.2a selfcheck_exact") as c:
        for case, (answer, samples) in cases.items():
            got = _float(c, c.call(selfcheck_exact, answer, list(samples), case=case), case)
            c.close(got, _H.selfcheck_exact(answer, samples), case=case, atol=1e-9)


def check_selfcheck_cosine(selfcheck_cosine) -> None:
    """Exercise 13.2b: 1 - mean cosine similarity of the answer vector (d,) with the N sample vectors (N, d)."""
    import numpy as np

    from llmlab.evaluation import hallucination as _H

    cases = {
        "3 samples, vectors not unit length": (np.array([3.0, 0.0]), np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])),
        "2 samples in 3-d, one opposite": (np.array([1.0, 2.0, 2.0]), np.array([[-2.0, -4.0, -4.0], [0.0, 0.0, 5.0]])),
        "4 samples, one equal to the answer": (np.array([0.5, 0.5]), np.array([[0.5, 0.5], [4.0, 0.0], [0.0, 0.3],
                                                                               [1.0, 3.0]])),
    }
    with Check("Exercise 13.2b selfcheck_cosine") as c:
        for case, (a, s) in cases.items():
            got = _float(c, c.call(selfcheck_cosine, a.copy(), s.copy(), case=case), case)
            c.close(got, _H.selfcheck_cosine(a, s), case=case, atol=1e-6)



# ------ second part's checks go here (13.3-13.5: PII, semantic cache, gateway)
