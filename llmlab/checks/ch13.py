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
PII_NAMES = ["Sam", "Anna", "Anna Berzina", "Mikko Virtanen"]
PII_CASES = {
    "no PII at all": "The app crashes when I open the settings page.",
    "one email": "Write to anna.b@example.com please.",
    "two orders, not in sorted order, the first repeated": "Q-1041 is late, Q-1040 is fine, and Q-1041 again.",
    "a repeated email gets the same placeholder": "a@b.ee or a@b.ee, not c@d.ee",
    "an email holding a phone-like digit run (emails first)": "Mail mikko.555123456@posti.fi now.",
    "a phone, an order and an email: numbers count per kind": "Call +372 5512 3456 re Q-1042 or x@y.fi; Q-1043.",
    "a short name listed before a longer one that contains it": "Anna Berzina wrote; later Anna called.",
    "a listed name inside a longer word is not a name": "Samantha and Sam both ordered.",
    "everything together": "Hi, Mikko Virtanen (mikko@posti.fi, 555-123-4567): Q-1044 and Q-1044 for Sam.",
}


def check_mask_pii(mask_pii) -> None:
    """Exercise 13.3: placeholders <KIND_n> per distinct value, n from 1 per kind, kinds in PATTERNS order then
    NAME (whole words, longest first); returns (masked text, reverse map placeholder -> original)."""
    from llmlab.product import pii as _pii

    with Check("Exercise 13.3 mask_pii") as c:
        for case, text in PII_CASES.items():
            got = c.call(mask_pii, text, list(PII_NAMES), case=case)
            want_text, want_map = _pii.mask_pii(text, PII_NAMES)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"expected a tuple (masked text, reverse map), got {type(got).__name__}")
            masked, mapping = got
            c.that(isinstance(mapping, dict), case, f"the reverse map must be a dict, got {type(mapping).__name__}")
            c.that(masked == want_text, case, f"masked text: expected {want_text!r}, got {masked!r}")
            c.that(mapping == want_map, case, f"reverse map (placeholder -> original): expected {want_map}, "
                                              f"got {mapping}")
            c.that(_pii.unmask(masked, mapping) == text, case, "unmasking your result does not give the text back")


LOOKUP_KEYS = [[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
LOOKUP_CASES = [
    # (case, query, owners, user, threshold)
    ("the best entry is not the first above the threshold", [0.0, 0.6, 0.0, 0.8], ["u", "u", "u", "u"], "u", 0.5),
    ("similarity exactly at the threshold is a hit (>=)", [0.5, 0.5, 0.5, -0.5], ["v", "u", "v", "v"], "u", 0.5),
    ("just below the threshold is a miss", [0.5, 0.5, 0.5, -0.5], ["v", "u", "v", "v"], "u", 0.55),
    ("another user's closer entry is never served", [0.0, 0.6, 0.0, 0.8], ["u", "u", "u", "v"], "u", 0.5),
    ("another user's exact match is never served", [0.8, 0.0, 0.0, 0.6], ["v", "v", "u", "u"], "u", 0.0),
    ("no entry of this user", [1.0, 0.0, 0.0, 0.0], ["v", "v", "v", "v"], "u", 0.0),
    ("threshold 1.0 with an exact match", [0.0, 1.0, 0.0, 0.0], ["u", "u", "u", "u"], "u", 1.0),
    ("best of this user's entries, when the global best is another's", [0.6, 0.8, 0.0, 0.0], ["u", "u", "v", "u"],
     "u", 0.5),
]


def check_semantic_lookup(lookup) -> None:
    """Exercise 13.4: the answer of this user's most similar entry when similarity >= threshold, else None."""
    import numpy as np

    from llmlab.product import cache as _cache

    answers = ["hours", "returns", "password", "refund"]
    with Check("Exercise 13.4 semantic_lookup") as c:
        keys = np.array(LOOKUP_KEYS)
        cases = [(case, np.array(q), owners, user, t, keys) for case, q, owners, user, t in LOOKUP_CASES]
        cases.append(("an empty cache", np.array([1.0, 0.0, 0.0, 0.0]), [], "u", 0.0, np.zeros((0, 4))))
        for case, q, owners, user, t, keys in cases:
            got = c.call(lookup, q.copy(), keys.copy(), list(owners), list(answers[:len(keys)]), user, t, case=case)
            want = _cache.semantic_lookup(q, keys, owners, answers[:len(keys)], user, t)
            c.that(got == want and type(got) is type(want), case, f"expected {want!r}, got {got!r}")


class _Engine:
    """A fake engine: fails `fails` times (raising, or streaming a chunk then raising), then answers; counts calls."""

    def __init__(self, fails: int, text: str, half: bool = False):
        self.fails, self.text, self.half, self.calls = fails, text, half, 0

    def __call__(self, prompt: str):
        self.calls += 1
        failing = self.calls <= self.fails
        if self.half:
            return self._stream(failing)
        if failing:
            raise RuntimeError(f"engine failure {self.calls}")
        return [self.text[:4], self.text[4:]]

    def _stream(self, failing: bool):
        yield self.text[:4]
        if failing:
            raise ConnectionError("stream cut")
        yield self.text[4:]


GATEWAY_CASES = [
    # (case, [(name, fails, half)], retries, backoff)
    ("the first engine answers at once", [("a", 0, False), ("b", 0, False)], 2, 0.5),
    ("the first engine answers on its last retry", [("a", 2, False), ("b", 0, False)], 2, 0.5),
    ("the first engine fails every try: fall back to the second", [("a", 9, False), ("b", 1, False)], 2, 0.5),
    ("retries=0: one try per engine, no sleep", [("a", 1, False), ("b", 0, False)], 0, 0.5),
    ("a stream cut half-way is a failure, its chunks are dropped", [("a", 1, True), ("b", 0, False)], 1, 0.25),
    ("every engine fails: the canned fallback", [("a", 9, False), ("b", 9, True)], 1, 0.25),
]


def check_call_with_fallback(call_with_fallback) -> None:
    """Exercise 13.5: engines in order, 1 + retries tries each, sleep backoff·2**(k-1) before the k-th retry, a
    reply only when every chunk arrived; all failed: (FALLBACK_TEXT, 'fallback')."""
    import numpy as np

    from llmlab.product import gateway as _gateway

    with Check("Exercise 13.5 call_with_fallback") as c:
        for case, spec, retries, backoff in GATEWAY_CASES:
            runs = {}
            for who in ("learner", "reference"):
                engines = [(name, _Engine(fails, f"reply from {name}", half)) for name, fails, half in spec]
                sleeps: list = []
                if who == "learner":
                    got = c.call(call_with_fallback, engines, "where is my order?", retries, backoff, sleeps.append,
                                 case=case)
                else:
                    got = _gateway.call_with_fallback(engines, "where is my order?", retries, backoff, sleeps.append)
                runs[who] = (got, [e.calls for _, e in engines], sleeps)
            (got, calls, sleeps), (want, want_calls, want_sleeps) = runs["learner"], runs["reference"]
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"expected a tuple (answer, engine name), got {got!r}")
            c.that(got == want, case, f"expected {want!r}, got {got!r}")
            c.that(calls == want_calls, case, f"calls per engine: expected {want_calls}, got {calls} "
                                              f"(each engine gets 1 + retries tries)")
            c.that(len(sleeps) == len(want_sleeps) and np.allclose(sleeps, want_sleeps), case,
                   f"sleeps: expected {want_sleeps}, got {sleeps} (backoff·2**(k-1) before the k-th retry of an "
                   f"engine; none before its first try)")
