"""Check-can-fail tests for chapter 09's exercise checks."""

import math
from collections import Counter
from statistics import NormalDist

import numpy as np
import pytest
from checks_harness import CheckCase, make_tests

from llmlab import evaluation
from llmlab.checks import CheckFailed, ch09
from llmlab.evaluation import code, ranking, stats, text


def perplexity(logprobs):
    return evaluation.perplexity_from_logprobs(logprobs)


def perplexity_sign_error(logprobs):
    return math.exp(float(logprobs.mean()))


def perplexity_of_the_sum(logprobs):
    return math.exp(-float(logprobs.sum()))


def perplexity_base_2(logprobs):
    return 2 ** (-float(logprobs.mean()))


def perplexity_inverse_mean_probability(logprobs):
    return 1 / float(logprobs.exp().mean())                          # arithmetic, not geometric, mean of p


def bits_per_byte(logprobs, n_bytes):
    return -float(logprobs.sum()) / math.log(2) / n_bytes


def bits_in_nats(logprobs, n_bytes):
    return -float(logprobs.sum()) / n_bytes


def bits_per_token_not_byte(logprobs, n_bytes):
    return -float(logprobs.mean()) / math.log(2)


def bits_log10(logprobs, n_bytes):
    return -float(logprobs.sum()) / math.log(10) / n_bytes


def bits_mean_not_sum(logprobs, n_bytes):
    return -float(logprobs.mean()) / math.log(2) / n_bytes


def pass_at_k_biased(n, c, k):
    if k > n:
        raise ValueError("k > n")
    return 1 - (1 - c / n) ** k


def pass_at_k_no_k_check(n, c, k):
    return 1 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_float_binomials(n, c, k):
    if k > n:
        raise ValueError("k > n")
    return 1 - float(math.comb(n - c, k)) / float(math.comb(n, k))


def pass_at_k_is_c_over_n(n, c, k):
    if k > n:
        raise ValueError("k > n")
    return c / n


def pass_at_k_off_by_one(n, c, k):
    if k > n:
        raise ValueError("k > n")
    if n - c < k:
        return 1.0
    return 1 - np.prod(1 - k / np.arange(n - c, n + 1))


def pass_at_k_wrong_error(n, c, k):
    if k > n:
        raise IndexError("k > n")
    return code.pass_at_k(n, c, k)


def bt_without_normalisation(wins, iterations):
    wins = np.asarray(wins, float)
    games, p = wins + wins.T, np.ones(len(wins))
    for _ in range(iterations):
        p = wins.sum(1) / (games / (p[:, None] + p[None, :])).sum(1)
    return p


def bt_win_rate(wins, iterations):
    wins = np.asarray(wins, float)
    rate = wins.sum(1) / (wins + wins.T).sum(1)
    return rate / rate.sum()


def bt_transposed(wins, iterations):
    return ranking.bradley_terry(np.asarray(wins, float).T, iterations)


def bt_one_iteration(wins, iterations):
    return ranking.bradley_terry(wins, 1)


def bt_games_one_direction(wins, iterations):
    wins = np.asarray(wins, float)
    p = np.ones(len(wins)) / len(wins)
    for _ in range(iterations):
        p = wins.sum(1) / (wins / (p[:, None] + p[None, :])).sum(1)    # n_ij = wins[i, j]: forgets i's losses
        p /= p.sum()
    return p


def bt_losses_for_wins(wins, iterations):
    wins = np.asarray(wins, float)
    games, p = wins + wins.T, np.ones(len(wins)) / len(wins)
    for _ in range(iterations):
        p = wins.sum(0) / (games / (p[:, None] + p[None, :])).sum(1)   # column sums: how often i LOST
        p /= p.sum()
    return p


def bootstrap(values, n_resamples, confidence, seed):
    return stats.bootstrap_ci(values, n_resamples, confidence, seed)


def bootstrap_wrong_quantile(values, n_resamples, confidence, seed):
    means = np.random.default_rng(seed).choice(values, (n_resamples, len(values))).mean(1)
    alpha = 1 - confidence
    return (float(np.mean(values)), *(float(x) for x in np.quantile(means, [alpha, 1 - alpha])))


def bootstrap_without_replacement(values, n_resamples, confidence, seed):
    rng = np.random.default_rng(seed)
    means = np.array([rng.permutation(values).mean() for _ in range(n_resamples)])
    alpha = 1 - confidence
    return (float(np.mean(values)), *(float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2])))


def bootstrap_half_size_resamples(values, n_resamples, confidence, seed):
    values = np.asarray(values)
    means = np.random.default_rng(seed).choice(values, (n_resamples, max(1, len(values) // 2))).mean(1)
    alpha = 1 - confidence
    return (float(np.mean(values)), *(float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2])))


def bootstrap_without_mean(values, n_resamples, confidence, seed):
    return tuple(stats.bootstrap_ci(values, n_resamples, confidence, seed)[1:])


def bootstrap_median_as_mean(values, n_resamples, confidence, seed):
    return (float(np.median(values)), *stats.bootstrap_ci(values, n_resamples, confidence, seed)[1:])


def bootstrap_confidence_as_quantile(values, n_resamples, confidence, seed):
    means = np.random.default_rng(seed).choice(values, (n_resamples, len(values))).mean(1)
    return (float(np.mean(values)), *(float(x) for x in np.quantile(means, [1 - confidence, confidence])))


def _percentiles(values, means, confidence):
    alpha = 1 - confidence
    return (float(np.mean(values)), *(float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2])))


def bootstrap_normal_approximation(values, n_resamples, confidence, seed):
    v = np.asarray(values, float)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    half = z * v.std() / math.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)  # -0.03 for 2 of 20: below 0


def bootstrap_subsample_without_replacement(values, n_resamples, confidence, seed):
    v, rng = np.asarray(values, float), np.random.default_rng(seed)
    means = [rng.choice(v, len(v) // 2, replace=False).mean() for _ in range(n_resamples)]
    return _percentiles(v, means, confidence)                         # same spread for 300 normal scores


def bootstrap_never_picks_last(values, n_resamples, confidence, seed):
    v, rng = np.asarray(values, float), np.random.default_rng(seed)
    idx = rng.integers(0, len(v) - 1, size=(n_resamples, len(v)))     # high is exclusive: item n-1 never drawn
    return _percentiles(v, v[idx].mean(1), confidence)


def bootstrap_ignores_seed(values, n_resamples, confidence, seed):
    v, rng = np.asarray(values, float), np.random.default_rng()
    return _percentiles(v, v[rng.integers(0, len(v), size=(n_resamples, len(v)))].mean(1), confidence)


def bootstrap_fixed_seed(values, n_resamples, confidence, seed):
    return stats.bootstrap_ci(values, n_resamples, confidence, 0)


def bootstrap_choice_in_a_loop(values, n_resamples, confidence, seed):
    rng = np.random.default_rng(seed)
    return _percentiles(values, [rng.choice(values, len(values)).mean() for _ in range(n_resamples)], confidence)


def bootstrap_returns_array(values, n_resamples, confidence, seed):
    return np.array(stats.bootstrap_ci(values, n_resamples, confidence, seed))


def f1_sets(prediction, reference):
    p, r = set(text.normalize(prediction).split()), set(text.normalize(reference).split())
    if not p or not r:
        return float(p == r)
    common = len(p & r)
    return 0.0 if common == 0 else 2 * common / (len(p) + len(r))


def f1_not_normalised(prediction, reference):
    p, r = prediction.split(), reference.split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    return 0.0 if common == 0 else 2 * common / (len(p) + len(r))


def f1_recall_only(prediction, reference):
    p, r = text.normalize(prediction).split(), text.normalize(reference).split()
    if not p or not r:
        return float(p == r)
    return sum((Counter(p) & Counter(r)).values()) / len(r)


def f1_empty_is_zero(prediction, reference):
    p, r = text.normalize(prediction).split(), text.normalize(reference).split()
    if not p or not r:
        return 0.0
    return text.token_f1(prediction, reference)


def f1_precision_only(prediction, reference):
    p, r = text.normalize(prediction).split(), text.normalize(reference).split()
    if not p or not r:
        return float(p == r)
    return sum((Counter(p) & Counter(r)).values()) / len(p)


def f1_keeps_articles(prediction, reference):
    def norm(t):
        return "".join(ch for ch in t.lower() if ch.isalnum() or ch.isspace()).split()
    p, r = norm(prediction), norm(reference)
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    return 0.0 if common == 0 else 2 * common / (len(p) + len(r))


def f1_counts_membership(prediction, reference):
    p, r = text.normalize(prediction).split(), text.normalize(reference).split()
    if not p or not r:
        return float(p == r)
    common = sum(t in r for t in p)                                   # each repeat of a shared token counts
    prec, rec = common / len(p), min(common, len(r)) / len(r)
    return 0.0 if common == 0 else 2 * prec * rec / (prec + rec)


CASES = [
    CheckCase(ch09.check_perplexity, perplexity, [perplexity_sign_error, perplexity_of_the_sum, perplexity_base_2,
                                                    perplexity_inverse_mean_probability]),
    CheckCase(ch09.check_bits_per_byte, bits_per_byte, [bits_in_nats, bits_per_token_not_byte, bits_log10,
                                                            bits_mean_not_sum]),
    CheckCase(ch09.check_pass_at_k, code.pass_at_k, [pass_at_k_biased, pass_at_k_no_k_check, pass_at_k_float_binomials,
                                                     pass_at_k_is_c_over_n, pass_at_k_off_by_one,
                                                     pass_at_k_wrong_error]),
    CheckCase(ch09.check_bradley_terry, ranking.bradley_terry, [bt_without_normalisation, bt_win_rate, bt_transposed,
                                                                bt_one_iteration, bt_games_one_direction,
                                                                bt_losses_for_wins]),
    CheckCase(ch09.check_bootstrap_ci, bootstrap, [bootstrap_wrong_quantile, bootstrap_without_replacement,
                                                   bootstrap_half_size_resamples, bootstrap_confidence_as_quantile,
                                                   bootstrap_normal_approximation,
                                                   bootstrap_subsample_without_replacement,
                                                   bootstrap_never_picks_last, bootstrap_ignores_seed,
                                                   bootstrap_fixed_seed, bootstrap_returns_array,
                                                   bootstrap_without_mean, bootstrap_median_as_mean]),
    CheckCase(ch09.check_token_f1, text.token_f1, [f1_sets, f1_not_normalised, f1_recall_only, f1_empty_is_zero,
                                                    f1_precision_only, f1_keeps_articles, f1_counts_membership]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_bootstrap_check_passes_on_a_resampling_loop(capsys):
    ch09.check_bootstrap_ci(bootstrap_choice_in_a_loop)
    assert "✔" in capsys.readouterr().out


def test_biased_pass_at_k_failure_says_why():
    with pytest.raises(CheckFailed, match="underestimates pass@k"):
        ch09.check_pass_at_k(pass_at_k_biased)



# ---------------------------------------------------------------- exercise 09.7: the position-swap judge harness

def _harness(judge, items, *, unswap=True, none_consistent=False, tie_value=0.0, denominator="all",
             agreement_order="both", swap=True, verdict_from="original", tie_label="tie"):
    """The harness of exercise 09.7 with one switch per typical mistake (the defaults are the right answer)."""
    flip = {"A": "B", "B": "A", None: None}
    original = [judge(it.question, it.a, it.b) for it in items]
    swapped = [judge(it.question, it.b, it.a) if swap else judge(it.question, it.a, it.b) for it in items]
    back = [flip[s] if unswap else s for s in swapped]
    same = [o == b and (none_consistent or o is not None) for o, b in zip(original, back)]
    verdicts = [(o if verdict_from == "original" else s) if ok else tie_label
                for o, s, ok in zip(original, swapped, same)]
    labels = [it.human_preference for it in items]
    if agreement_order == "original":
        hits = [o == h for o, h in zip(original, labels)]
    else:
        hits = [tie_value if v == tie_label else float(v == h) for v, h in zip(verdicts, labels)]
    if denominator == "consistent":
        agreement = sum(h for h, ok in zip(hits, same) if ok) / max(1, sum(same))
    elif denominator == "parsed":
        parsed = [o is not None and s is not None for o, s in zip(original, swapped)]
        agreement = sum(h for h, ok in zip(hits, parsed) if ok) / max(1, sum(parsed))
    else:
        agreement = sum(hits) / len(items)
    return {"verdicts": verdicts, "consistency": sum(same) / len(items), "agreement": agreement}


def swap_harness(judge, items):
    return _harness(judge, items)


def swap_harness_library(judge, items):
    run = evaluation.judge.run_pair_judge(judge, items)
    return {"verdicts": [o if (o, s) in (("A", "B"), ("B", "A")) else "tie" for o, s in zip(run.original, run.swapped)],
            "consistency": run.bias.consistency,
            "agreement": sum(o == h and (o, s) in (("A", "B"), ("B", "A"))
                             for o, s, h in zip(run.original, run.swapped, run.human)) / len(run.human)}


def swap_not_unswapped(judge, items):
    return _harness(judge, items, unswap=False)  # 'A' then 'A' counted as consistent: that is pure position bias


def swap_none_none_consistent(judge, items):
    return _harness(judge, items, none_consistent=True)


def swap_tie_half_agreement(judge, items):
    return _harness(judge, items, tie_value=0.5)


def swap_agreement_over_consistent_pairs(judge, items):
    return _harness(judge, items, denominator="consistent")


def swap_agreement_over_parsed_pairs(judge, items):
    return _harness(judge, items, denominator="parsed")


def swap_agreement_original_order_only(judge, items):
    return _harness(judge, items, agreement_order="original")


def swap_asks_one_order_twice(judge, items):
    return _harness(judge, items, swap=False)


def swap_verdict_in_swapped_letters(judge, items):
    return _harness(judge, items, verdict_from="swapped")


def swap_tie_as_a(judge, items):
    return _harness(judge, items, tie_label="A")


def swap_tie_as_none(judge, items):
    return _harness(judge, items, tie_label=None)


def swap_consistency_as_percent(judge, items):
    result = _harness(judge, items)
    return {**result, "consistency": 100 * result["consistency"], "agreement": 100 * result["agreement"]}


def swap_consistency_counts_unparsable_pairs(judge, items):
    result = _harness(judge, items)  # verdicts and agreement right, but None/None counted as consistent
    flip = {"A": "B", "B": "A", None: None}
    same = [judge(it.question, it.a, it.b) == flip[judge(it.question, it.b, it.a)] for it in items]
    return {**result, "consistency": sum(same) / len(items)}


def swap_consistency_over_parsed_pairs(judge, items):
    result = _harness(judge, items)
    parsed = sum(judge(it.question, it.a, it.b) is not None and judge(it.question, it.b, it.a) is not None
                 for it in items)
    return {**result, "consistency": result["consistency"] * len(items) / parsed}


SWAP_CASES = [
    CheckCase(ch09.check_swap_harness, swap_harness,
              [swap_not_unswapped, swap_none_none_consistent, swap_tie_half_agreement,
               swap_agreement_over_consistent_pairs, swap_agreement_over_parsed_pairs,
               swap_agreement_original_order_only, swap_asks_one_order_twice, swap_verdict_in_swapped_letters,
               swap_tie_as_a, swap_tie_as_none, swap_consistency_as_percent, swap_harness_library,
               swap_consistency_counts_unparsable_pairs, swap_consistency_over_parsed_pairs]),
]

test_swap_passes, test_swap_fails_on_stub, test_swap_fails_on_wrong = make_tests(SWAP_CASES)
