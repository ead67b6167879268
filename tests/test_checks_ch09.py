"""Check-can-fail tests for chapter 09's exercise checks."""

import math
from collections import Counter

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


def bits_per_byte(logprobs, n_bytes):
    return -float(logprobs.sum()) / math.log(2) / n_bytes


def bits_in_nats(logprobs, n_bytes):
    return -float(logprobs.sum()) / n_bytes


def bits_per_token_not_byte(logprobs, n_bytes):
    return -float(logprobs.mean()) / math.log(2)


def bits_log10(logprobs, n_bytes):
    return -float(logprobs.sum()) / math.log(10) / n_bytes


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


def bootstrap(values, n_resamples, confidence, seed):
    return stats.bootstrap_ci(values, n_resamples, confidence, seed)


def bootstrap_wrong_quantile(values, n_resamples, confidence, seed):
    means = np.random.default_rng(seed).choice(values, (n_resamples, len(values))).mean(1)
    alpha = 1 - confidence
    return tuple(float(x) for x in np.quantile(means, [alpha, 1 - alpha]))


def bootstrap_without_replacement(values, n_resamples, confidence, seed):
    rng = np.random.default_rng(seed)
    means = np.array([rng.permutation(values).mean() for _ in range(n_resamples)])
    alpha = 1 - confidence
    return tuple(float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2]))


def bootstrap_half_size_resamples(values, n_resamples, confidence, seed):
    values = np.asarray(values)
    means = np.random.default_rng(seed).choice(values, (n_resamples, max(1, len(values) // 2))).mean(1)
    alpha = 1 - confidence
    return tuple(float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2]))


def bootstrap_confidence_as_quantile(values, n_resamples, confidence, seed):
    means = np.random.default_rng(seed).choice(values, (n_resamples, len(values))).mean(1)
    return tuple(float(x) for x in np.quantile(means, [1 - confidence, confidence]))


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


CASES = [
    CheckCase(ch09.check_perplexity, perplexity, [perplexity_sign_error, perplexity_of_the_sum, perplexity_base_2]),
    CheckCase(ch09.check_bits_per_byte, bits_per_byte, [bits_in_nats, bits_per_token_not_byte, bits_log10]),
    CheckCase(ch09.check_pass_at_k, code.pass_at_k, [pass_at_k_biased, pass_at_k_no_k_check, pass_at_k_float_binomials,
                                                     pass_at_k_is_c_over_n, pass_at_k_off_by_one,
                                                     pass_at_k_wrong_error]),
    CheckCase(ch09.check_bradley_terry, ranking.bradley_terry, [bt_without_normalisation, bt_win_rate, bt_transposed,
                                                                bt_one_iteration]),
    CheckCase(ch09.check_bootstrap_ci, bootstrap, [bootstrap_wrong_quantile, bootstrap_without_replacement,
                                                   bootstrap_half_size_resamples, bootstrap_confidence_as_quantile]),
    CheckCase(ch09.check_token_f1, text.token_f1, [f1_sets, f1_not_normalised, f1_recall_only, f1_empty_is_zero]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_biased_pass_at_k_failure_says_why():
    with pytest.raises(CheckFailed, match="underestimates pass@k"):
        ch09.check_pass_at_k(pass_at_k_biased)

