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


# ---------------------------------------------------------------- exercise 07.5: the draft → verify → roll-back loop

def _spec_loop(target, draft, prompt, max_new_tokens, gamma, eos_token_id=None, *, bonus=True, keep_rejected=False,
               target_rollback=0, draft_rollback=True, full_gamma=False, slack=0, truncate=False, eos="any",
               with_prompt=False):
    """The loop of exercise 07.5 with one switch per typical mistake (the defaults are the right answer)."""
    from llmlab import speculative
    from llmlab.attention import forward
    from llmlab.kv_cache import KVCache

    tokens = list(prompt)
    capacity = len(tokens) + max_new_tokens + 2 * gamma + 2
    cache = KVCache.for_weights(target, 1, capacity)
    forward(target, torch.tensor([tokens[:-1]]), cache)
    draft.start(tokens, capacity)
    accepted = []
    while len(tokens) - len(prompt) < max_new_tokens:
        k = gamma if full_gamma else min(gamma, max_new_tokens - (len(tokens) - len(prompt)) - 1 + slack)
        drafted = draft.propose(tokens, k, speculative.GREEDY, None)[0] if k > 0 else []
        logits = forward(target, torch.tensor([tokens[cache.length:] + drafted]), cache)[0]
        n, token = speculative.verify_greedy(logits[-(len(drafted) + 1):].argmax(-1).tolist(), drafted)
        accepted.append(n)
        before = len(tokens)
        if keep_rejected and n < len(drafted):
            tokens += drafted[:n + 1]  # the rejected draft token instead of the target's correction
        elif bonus or n < len(drafted):
            tokens += drafted[:n] + [token]
        else:
            tokens += drafted[:n]  # all k accepted: the bonus token is dropped
        cache.truncate(min(len(tokens) - 1 + target_rollback, cache.length))
        if draft_rollback:
            draft.commit(len(tokens) - 1)
        step = tokens[before:] if eos == "last" else tokens[len(prompt):]
        if eos_token_id is not None and (step[-1:] == [eos_token_id] if eos == "last" else eos_token_id in step):
            new = tokens[len(prompt):]
            cut = new.index(eos_token_id) + (0 if eos == "drop" else 1)
            tokens = tokens[:len(prompt)] + (new if eos == "whole_step" else new[:cut])
            break
    new = tokens[len(prompt):][:max_new_tokens] if truncate else tokens[len(prompt):]
    return (list(prompt) + new if with_prompt else new), accepted


def spec_loop(*args):
    return _spec_loop(*args)


def spec_loop_no_bonus(*args):
    return _spec_loop(*args, bonus=False)


def spec_loop_no_bonus_full_budget(*args):
    return _spec_loop(*args, bonus=False, slack=1)  # ends (drafts ≥ 1 per pass), but a pass too many at the end


def spec_loop_keeps_rejected_token(*args):
    return _spec_loop(*args, keep_rejected=True)


def spec_loop_rollback_off_by_one(*args):
    return _spec_loop(*args, target_rollback=1)  # keeps the KV of the position the rejected token held


def spec_loop_no_target_rollback(*args):
    return _spec_loop(*args, target_rollback=10 ** 6)


def spec_loop_no_draft_rollback(*args):
    return _spec_loop(*args, draft_rollback=False)


def spec_loop_overshoots(*args):
    return _spec_loop(*args, full_gamma=True)  # drafts γ even when fewer are left: up to γ extra tokens


def spec_loop_truncates_overshoot(*args):
    return _spec_loop(*args, full_gamma=True, truncate=True)  # right tokens, but the last step's count is wrong


def spec_loop_eos_only_checks_last_token(*args):
    return _spec_loop(*args, eos="last")


def spec_loop_eos_dropped(*args):
    return _spec_loop(*args, eos="drop")


def spec_loop_eos_keeps_whole_step(*args):
    return _spec_loop(*args, eos="whole_step")


def spec_loop_returns_prompt(*args):
    return _spec_loop(*args, with_prompt=True)


def spec_loop_ignores_eos(target, draft, prompt, max_new_tokens, gamma, eos_token_id=None):
    return _spec_loop(target, draft, prompt, max_new_tokens, gamma, None)


def spec_loop_library(target, draft, prompt, max_new_tokens, gamma, eos_token_id=None):
    from llmlab import speculative

    r = speculative.generate(target, draft, torch.tensor([prompt]), max_new_tokens, gamma=gamma,
                             eos_token_id=eos_token_id)
    return r.token_ids, [s.accepted for s in r.steps]


LOOP_CASES = [
    CheckCase(ch07.check_speculative_loop, spec_loop,
              [spec_loop_no_bonus, spec_loop_no_bonus_full_budget, spec_loop_keeps_rejected_token,
               spec_loop_rollback_off_by_one, spec_loop_no_target_rollback, spec_loop_no_draft_rollback,
               spec_loop_overshoots, spec_loop_truncates_overshoot, spec_loop_eos_only_checks_last_token,
               spec_loop_eos_dropped, spec_loop_eos_keeps_whole_step, spec_loop_returns_prompt,
               spec_loop_ignores_eos]),
]

test_loop_passes, test_loop_fails_on_stub, test_loop_fails_on_wrong = make_tests(LOOP_CASES)


def test_loop_check_passes_on_the_library_loop(capsys):
    ch07.check_speculative_loop(spec_loop_library)
    assert "✔" in capsys.readouterr().out
