"""Checks for chapter 09 (evaluation) exercises."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

from llmlab.checks import Check
from llmlab.evaluation import code, ranking, text
from llmlab.kit.exercises import NOT_STARTED, STUB_ERROR


def _logprobs(n: int, seed: int) -> torch.Tensor:
    """Reproducible natural-log probabilities, shape (n,)."""
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(n, 50, generator=g) * 2, dim=-1)[:, 0]


def check_perplexity(perplexity) -> None:
    """Exercise 09.1: perplexity = exp(mean negative logprob per token)."""
    with Check("Exercise 09.1 perplexity") as c:
        case = "three tokens each with probability 0.5 (perplexity 2: as unsure as a coin flip)"
        c.close(c.call(perplexity, torch.full((3,), math.log(0.5)), case=case), 2.0, case=case)
        case = "one token with probability 1"
        c.close(c.call(perplexity, torch.tensor([0.0]), case=case), 1.0, case=case)
        for n, seed in ((7, 1), (40, 2)):
            lps = _logprobs(n, seed)
            case = f"{n} logprobs from a real-looking distribution"
            got = c.call(perplexity, lps.clone(), case=case)
            expected = math.exp(-float(lps.mean()))
            c.close(got, expected, case=case, rtol=1e-4)


def check_bits_per_byte(bits_per_byte) -> None:
    """Exercise 09.2: total bits (-sum of natural logprobs / ln 2) divided by the text's UTF-8 bytes."""
    with Check("Exercise 09.2 bits_per_byte") as c:
        case = "4 tokens of probability 1/4 (2 bits each) over 2 bytes"
        c.close(c.call(bits_per_byte, torch.full((4,), math.log(0.25)), 2, case=case), 4.0, case=case)
        case = "2 tokens of probability 1/2 (1 bit each) over 8 bytes"
        c.close(c.call(bits_per_byte, torch.full((2,), math.log(0.5)), 8, case=case), 0.25, case=case)
        lps = _logprobs(12, 3)
        case = "12 real-looking logprobs over 37 bytes"
        c.close(c.call(bits_per_byte, lps.clone(), 37, case=case), -float(lps.sum()) / math.log(2) / 37, case=case)


def check_pass_at_k(pass_at_k) -> None:
    """Exercise 09.3: the unbiased pass@k estimator 1 - C(n-c, k) / C(n, k); k > n is a ValueError."""
    with Check("Exercise 09.3 pass_at_k") as c:
        for n, k_c in ((10, [(3, 1), (3, 5), (0, 4), (10, 1), (8, 3), (1, 10)]), (5000, [(10, 200), (1, 1)])):
            for cc, k in k_c:
                case = f"n={n} samples, c={cc} correct, k={k}"
                got = c.call(pass_at_k, n, cc, k, case=case)
                expected = code.pass_at_k(n, cc, k)
                note = ""
                if abs(float(got) - code.pass_at_k_biased(n, cc, k)) < 1e-9 and abs(expected - float(got)) > 1e-9:
                    note = " — that is 1 - (1 - c/n)^k, which samples with replacement and underestimates pass@k"
                if not isinstance(got, (int, float, np.floating)) or abs(float(got) - expected) > 1e-9:
                    c.fail(case, f"expected {expected!r}, got {got!r}{note}")
                c.cases.append(case)
        case = "k=11 > n=10 samples (cannot draw 11 of 10)"
        c.cases.append(case)
        try:
            got = pass_at_k(10, 3, 11)
        except ValueError:
            pass
        except STUB_ERROR:
            c.fail(case, NOT_STARTED)
        except Exception as exc:  # noqa: BLE001 - any other error is the wrong kind
            c.fail(case, f"expected a ValueError, got {type(exc).__name__}: {exc}")
        else:
            c.fail(case, f"expected a ValueError naming k and n, got the value {got!r}")


def _book_wins() -> np.ndarray:
    """Win counts of AI Engineering's five-model table (ch. 3, Table 3-6)."""
    return ranking.win_matrix(ranking.matches_from_win_rates(ranking.BOOK_WIN_RATES))


def check_bradley_terry(bradley_terry) -> None:
    """Exercise 09.4: Bradley-Terry strengths by the MM update, normalised to sum 1."""
    true = np.array([0.1, 0.2, 0.3, 0.4])
    known = np.round(ranking.bt_win_probability(true) * 10000)
    np.fill_diagonal(known, 0)
    with Check("Exercise 09.4 bradley_terry") as c:
        for case, wins in (("wins generated from strengths [0.1, 0.2, 0.3, 0.4]", known),
                           ("AI Engineering's five-model table (ch. 3, Table 3-6; 1,000 matches per pair)",
                            _book_wins()),
                           ("three players, wins [[0, 6, 3], [4, 0, 7], [2, 5, 0]]",
                            np.array([[0, 6, 3], [4, 0, 7], [2, 5, 0]], dtype=float))):
            got = c.call(bradley_terry, wins.copy(), 1000, case=case)
            c.that(isinstance(got, np.ndarray), case, f"expected a numpy array, got {type(got).__name__}")
            c.that(got.shape == (len(wins),), case, f"expected shape {(len(wins),)}, got {got.shape}")
            c.that(abs(float(got.sum()) - 1) < 1e-6, case,
                   f"strengths must sum to 1 (only their ratios are identified; normalise), got sum {got.sum():.6g}")
            expected = ranking.bradley_terry(wins, 1000)
            c.close(got, expected, case=case, atol=1e-5, rtol=1e-4)


def _interval(c: Check, got, case: str) -> tuple[float, float, float]:
    """The learner's (mean, low, high) as three floats, failing the case when it is not three numbers."""
    c.that(isinstance(got, tuple) and len(got) == 3, case, f"expected a (mean, low, high) tuple, got {got!r}")
    for x in got:
        c.that(isinstance(x, (int, float, np.number)) and not isinstance(x, bool), case,
               f"expected three numbers (mean, low, high), got {type(x).__name__}")
    return float(got[0]), float(got[1]), float(got[2])


def check_bootstrap_ci(bootstrap_ci) -> None:
    """Exercise 09.5: (mean, low, high), the percentile bootstrap interval of the mean (with replacement, same size)."""
    values = np.random.default_rng(5).normal(70, 12, size=300)
    se = values.std() / math.sqrt(len(values))
    with Check("Exercise 09.5 bootstrap_ci") as c:
        case = "five identical scores"
        mean, low, high = _interval(c, c.call(bootstrap_ci, [3.0] * 5, 500, 0.95, 0, case=case), case)
        for x in (mean, low, high):
            c.close(x, 3.0, case=case)
        for confidence in (0.95, 0.8):
            z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
            case = f"300 scores, confidence {confidence}"
            mean, low, high = _interval(c, c.call(bootstrap_ci, values.copy(), 4000, confidence, 0, case=case), case)
            c.close(mean, values.mean(), case=case)
            c.that(low <= values.mean() <= high, case, f"the interval ({low:.3f}, {high:.3f}) must contain the mean "
                                                       f"{values.mean():.3f}")
            width, want = high - low, 2 * z * se
            c.that(abs(width / want - 1) < 0.08, case,
                   f"interval width should be about {want:.3f} (the {confidence:.0%} interval: quantiles "
                   f"{(1 - confidence) / 2:.3g} and {1 - (1 - confidence) / 2:.3g} of the resampled means, each "
                   f"resample the same size as the data, drawn with replacement), got {width:.3f}")
        # Small 0/1 samples: the resampled mean is k/20 with k ~ Binomial(20, share); the quantiles below sit far
        # from the steps of that distribution, so every correct resampler gets exactly these endpoints.
        for ones, confidence, want, why in (
                ([3, 11], 0.95, (0.0, 0.25), "a normal approximation goes below 0 here, and resamples drawn "
                                             "without replacement or smaller than the data are too narrow"),
                ([19], 0.9, (0.0, 0.15), "the one correct item is the LAST: every index 0..n-1 must be drawable "
                                         "(rng.integers' high is exclusive)")):
            data = [1.0 if i in ones else 0.0 for i in range(20)]
            case = f"{len(ones)} of 20 correct (at positions {ones}), confidence {confidence}"
            mean, low, high = _interval(c, c.call(bootstrap_ci, list(data), 4000, confidence, 0, case=case), case)
            c.close(mean, len(ones) / 20, case=case)
            c.that(0.0 <= low <= high <= 1.0, case, f"a percentile interval of 0/1 scores lies inside [0, 1], got "
                                                    f"({low:.4g}, {high:.4g}): {why}")
            c.that(math.isclose(low, want[0], abs_tol=1e-9) and math.isclose(high, want[1], abs_tol=1e-9), case,
                   f"expected {want}, got ({low:.4g}, {high:.4g}): {why}")
        case = "the seed: the same seed twice gives the same interval, another seed a different one"
        runs = [_interval(c, c.call(bootstrap_ci, values.copy(), 500, 0.95, seed, case=case), case)
                for seed in (3, 3, 4)]
        c.that(runs[0] == runs[1], case, f"seed 3 twice gave {runs[0]} and {runs[1]}: draw every resample from "
                                         f"np.random.default_rng(seed)")
        c.that(runs[0] != runs[2], case, f"seeds 3 and 4 gave the same interval {runs[0]}: use the seed argument, "
                                         f"not a fixed one")


def check_token_f1(token_f1) -> None:
    """Exercise 09.6: SQuAD token F1 on normalised tokens counted as multisets."""
    cases = [("The cat sat.", "the cat sat"), ("cat cat cat", "cat"), ("the the dog", "a dog dog"),
             ("red blue", "green"), ("Paris, France", "paris"), ("", ""), ("", "Paris")]
    with Check("Exercise 09.6 token_f1") as c:
        for prediction, reference in cases:
            case = f"prediction {prediction!r}, reference {reference!r}"
            c.close(c.call(token_f1, prediction, reference, case=case), text.token_f1(prediction, reference),
                    case=case)


# (original-order reply, swapped-order reply, human preference) per pair: every kind of (in)consistency and parse
_SWAP_TABLE = [("A", "B", "A"), ("B", "A", "A"), ("A", "A", "A"), ("B", "B", "B"), (None, None, "B"),
               ("A", None, "A"), ("B", "A", "B"), ("A", "B", "B"), ("B", "A", "B"), (None, "A", "B")]


def _swap_cases() -> list[tuple[str, object, list]]:
    """(case, judge(question, a, b) -> 'A' | 'B' | None, labelled pairs) for exercise 09.7."""
    from llmlab.tasks import judging

    table = [judging.LabelledPair(i, f"question {i}", f"first answer {i}", f"second answer {i}", 3, 3, h)
             for i, (_, _, h) in enumerate(_SWAP_TABLE)]
    replies = {}
    for item, (original, swapped, _) in zip(table, _SWAP_TABLE):
        replies[(item.question, item.a, item.b)] = original
        replies[(item.question, item.b, item.a)] = swapped
    shipped = judging.load_labels()[:12]
    return [
        ("ten pairs with scripted replies: consistent both ways, always slot A, always slot B, unparsable (None) "
         "in one or both orders", lambda q, a, b: replies[(q, a, b)], table),
        ("the shipped judge's habit, always slot A, on 12 labelled pairs", lambda q, a, b: "A", shipped),
        ("a judge preferring the longer answer on 12 labelled pairs", lambda q, a, b: "A" if len(a) >= len(b) else "B",
         shipped),
    ]


def check_swap_harness(swap_harness) -> None:
    """Exercise 09.7: swap_harness(judge, items) -> {'verdicts', 'consistency', 'agreement'} from both orders."""
    from llmlab.checks import call_forbidding
    from llmlab.evaluation import judge as judge_module

    with Check("Exercise 09.7 swap_harness") as c:
        for case, judge, items in _swap_cases():
            original = [judge(it.question, it.a, it.b) for it in items]
            swapped = [judge(it.question, it.b, it.a) for it in items]
            verdicts = [o if (o, s) in (("A", "B"), ("B", "A")) else "tie" for o, s in zip(original, swapped)]
            consistency = judge_module.position_bias(original, swapped).consistency
            agreement = sum(v == it.human_preference for v, it in zip(verdicts, items)) / len(items)
            got = call_forbidding(c, swap_harness, judge, list(items), case=case,
                                  forbidden=["llmlab.evaluation.judge.position_bias",
                                             "llmlab.evaluation.judge.run_pair_judge"],
                                  hint="ask the judge in both orders and compare the verdicts yourself")
            c.that(isinstance(got, dict) and {"verdicts", "consistency", "agreement"} <= set(got), case,
                   f"return a dict with keys 'verdicts', 'consistency', 'agreement', got {got!r}")
            c.that(isinstance(got["verdicts"], (list, tuple)), case,
                   f"verdicts must be a list, got {type(got['verdicts']).__name__}")
            c.equal(list(got["verdicts"]), verdicts,
                    case=case + " — verdict per pair in the original order's letters ('A' = items[i].a won in both "
                                "orders, 'tie' when the orders disagree or a reply is None)")
            c.close(got["consistency"], consistency,
                    case=case + " — consistency: share of ALL pairs whose two verdicts name the same answer")
            c.close(got["agreement"], agreement,
                    case=case + " — agreement: share of ALL pairs whose verdict equals the human preference (a tie "
                                "never agrees)")
