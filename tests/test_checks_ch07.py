"""Check-can-fail tests for chapter 07's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab.checks import ch07
from llmlab.speculative import rejection


def acceptance(p, q):
    return torch.clamp(p / q, max=1.0)


def acceptance_inverted(p, q):
    return torch.clamp(q / p, max=1.0)  # q/p: accepts what the draft over-proposes


def acceptance_unclamped(p, q):
    return p / q  # a "probability" of 3


def acceptance_max(p, q):
    return torch.maximum(torch.ones_like(p), p / q)


def acceptance_scalar(p, q):
    return float(torch.clamp(p / q, max=1.0).mean())  # one number for the whole batch


def residual(p, q):
    diff = (p - q).clamp_min(0)
    return diff / diff.sum(-1, keepdim=True)


def residual_not_normalised(p, q):
    return (p - q).clamp_min(0)


def residual_inverted(p, q):
    diff = (q - p).clamp_min(0)
    return diff / diff.sum(-1, keepdim=True)


def residual_no_clamp(p, q):
    diff = p - q
    return diff / diff.abs().sum(-1, keepdim=True)


def residual_wrong_axis(p, q):
    diff = (p - q).clamp_min(0)
    return diff / diff.sum(0, keepdim=True)  # normalises columns of a batch, not each row


def residual_whole_batch(p, q):
    diff = (p - q).clamp_min(0)
    return diff / diff.sum()  # one sum over the batch: rows do not sum to 1


def verify_step(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i, sample(rejection.residual_distribution(p[i], q[i]))
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_off_by_one(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i + 1, sample(rejection.residual_distribution(p[i], q[i]))  # counts the rejected token
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_samples_p_on_rejection(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i, sample(p[i])  # plain target sampling: not lossless
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_no_bonus(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i, sample(rejection.residual_distribution(p[i], q[i]))
    return len(draft_tokens) - 1, draft_tokens[-1]  # forgets the free token from p[γ]


def verify_bonus_from_last_draft_row(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i, sample(rejection.residual_distribution(p[i], q[i]))
    return len(draft_tokens), sample(p[len(draft_tokens) - 1])


def verify_inverted_ratio(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(q[i, token] / p[i, token])):
            return i, sample(rejection.residual_distribution(p[i], q[i]))
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_unnormalised_residual(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] >= min(1.0, float(p[i, token] / q[i, token])):
            return i, sample((p[i] - q[i]).clamp_min(0))
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_rejects_only_above_ratio(p, q, draft_tokens, coins, sample):
    for i, token in enumerate(draft_tokens):
        if coins[i] > min(1.0, float(p[i, token] / q[i, token])):     # keeps a coin equal to the ratio
            return i, sample(rejection.residual_distribution(p[i], q[i]))
    return len(draft_tokens), sample(p[len(draft_tokens)])


def verify_counts_every_kept_token(p, q, draft_tokens, coins, sample):
    kept = [float(coins[i]) < min(1.0, float(p[i, t] / q[i, t])) for i, t in enumerate(draft_tokens)]
    if all(kept):
        return len(draft_tokens), sample(p[len(draft_tokens)])
    first = kept.index(False)                                         # keeps counting after the first rejection
    return sum(kept), sample(rejection.residual_distribution(p[first], q[first]))


def tokens_per_step(alpha, gamma):
    return gamma + 1.0 if alpha == 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)


def tokens_off_by_one(alpha, gamma):
    return gamma + 1.0 if alpha == 1 else (1 - alpha ** gamma) / (1 - alpha)


def tokens_no_alpha_one(alpha, gamma):
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)  # ZeroDivisionError at α = 1


def tokens_without_the_target_token(alpha, gamma):
    return float(gamma) if alpha == 1 else alpha * (1 - alpha ** gamma) / (1 - alpha)


def tokens_geometric_limit(alpha, gamma):
    return float("inf") if alpha == 1 else 1 / (1 - alpha)  # ignores that at most γ + 1 come per pass


def tokens_linear(alpha, gamma):
    return 1 + alpha * gamma                                          # as if every draft token were independent


CASES = [
    CheckCase(ch07.check_acceptance_probability, acceptance,
              [acceptance_inverted, acceptance_unclamped, acceptance_max, acceptance_scalar]),
    CheckCase(ch07.check_residual_distribution, residual,
              [residual_not_normalised, residual_inverted, residual_no_clamp, residual_wrong_axis,
               residual_whole_batch]),
    CheckCase(ch07.check_verify_step, verify_step,
              [verify_off_by_one, verify_samples_p_on_rejection, verify_no_bonus, verify_bonus_from_last_draft_row,
               verify_inverted_ratio, verify_unnormalised_residual, verify_rejects_only_above_ratio,
               verify_counts_every_kept_token]),
    CheckCase(ch07.check_expected_tokens_per_step, tokens_per_step,
              [tokens_off_by_one, tokens_no_alpha_one, tokens_without_the_target_token, tokens_geometric_limit,
               tokens_linear]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
