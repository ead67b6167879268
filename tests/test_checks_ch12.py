"""Check-can-fail tests for chapter 12's exercise checks."""

import numpy as np
import torch
from checks_harness import CheckCase, make_tests

from llmlab import data_engineering as de
from llmlab import posttraining as pt
from llmlab.checks import ch12

# ---------------------------------------------------------------- 12.1 jaccard


def jaccard_on_lists(a, b):
    inter = [x for x in a if x in b]
    return len(inter) / len(a + b) if a or b else 1.0


def jaccard_over_smaller_set(a, b):
    sa, sb = set(a), set(b)
    return len(sa & sb) / min(len(sa), len(sb)) if sa and sb else 1.0


def jaccard_crashes_on_empty(a, b):
    return len(set(a) & set(b)) / len(set(a) | set(b))


def jaccard_intersection_over_sum(a, b):
    sa, sb = set(a), set(b)
    return len(sa & sb) / (len(sa) + len(sb)) if sa or sb else 1.0


def jaccard_floor_division(a, b):
    sa, sb = set(a), set(b)
    return len(sa & sb) // len(sa | sb) if sa or sb else 1


def jaccard_empty_is_zero(a, b):
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 0.0


# ---------------------------------------------------------------- 12.2 minhash


M61, MAX32 = np.uint64((1 << 61) - 1), np.uint64((1 << 32) - 1)


def minhash_max_instead_of_min(hashes, a, b):
    return ((np.outer(hashes, a) + b) % M61 & MAX32).max(axis=0)


def minhash_min_over_wrong_axis(hashes, a, b):
    return ((np.outer(hashes, a) + b) % M61 & MAX32).min(axis=1)


def minhash_without_mod_prime(hashes, a, b):
    return ((np.outer(hashes, a) + b) & MAX32).min(axis=0)


def minhash_mask_before_mod(hashes, a, b):
    return (((np.outer(hashes, a) + b) & MAX32) % M61).min(axis=0)


def minhash_exact_integers(hashes, a, b):
    out = [min(((int(ai) * int(h) + int(bi)) % ((1 << 61) - 1)) & ((1 << 32) - 1) for h in hashes)
           for ai, bi in zip(a, b)]                                # the formula without uint64's wrap-around
    return np.array(out, dtype=np.uint64)


def minhash_python_ints_with_wrap(hashes, a, b):
    out = [min((((int(ai) * int(h) + int(bi)) % (1 << 64)) % ((1 << 61) - 1)) & ((1 << 32) - 1) for h in hashes)
           for ai, bi in zip(a, b)]
    return np.array(out, dtype=np.uint64)


def minhash_returns_list(hashes, a, b):
    return de.minhash_from_hashes(hashes, a, b).tolist()


def minhash_int64(hashes, a, b):
    h, a, b = (np.asarray(x).astype(np.int64) for x in (hashes, a, b))   # signed: wraps to negatives
    return ((np.outer(h, a) + b) % np.int64((1 << 61) - 1) & np.int64((1 << 32) - 1)).min(axis=0)


# ---------------------------------------------------------------- 12.3 overlap share


def _grams(text, n, last=True):
    w = de.words(text)
    if len(w) < n:
        return [tuple(w)]
    return [tuple(w[i:i + n]) for i in range(len(w) - n + (1 if last else 0))]


def overlap_misses_last_ngram(text, train, n):
    ref = {g for t in train for g in _grams(t, n, last=False)}
    grams = set(_grams(text, n, last=False)) or {tuple(de.words(text))}
    return sum(g in ref for g in grams) / len(grams)


def overlap_counts_repeats(text, train, n):
    ref = {g for t in train for g in _grams(t, n)}
    grams = _grams(text, n)
    return sum(g in ref for g in grams) / len(grams)


def overlap_joins_training_texts(text, train, n):
    ref = set(_grams(" ".join(train), n))
    grams = set(_grams(text, n))
    return sum(g in ref for g in grams) / len(grams)


def overlap_without_normalizing(text, train, n):
    def raw(t):
        w = t.split()
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)} if len(w) >= n else {tuple(w)}
    ref = set().union(*(raw(t) for t in train))
    grams = raw(text)
    return sum(g in ref for g in grams) / len(grams)


def overlap_short_text_is_zero(text, train, n):
    ref = {g for t in train for g in _grams(t, n, last=True) if len(g) == n}
    grams = {g for g in _grams(text, n) if len(g) == n}             # no n-gram in a text shorter than n
    return sum(g in ref for g in grams) / len(grams) if grams else 0.0


def overlap_skips_short_training_texts(text, train, n):
    ref = {g for t in train if len(de.words(t)) >= n for g in _grams(t, n)}
    grams = set(_grams(text, n))
    return sum(g in ref for g in grams) / len(grams)


# ---------------------------------------------------------------- 12.4 quality filter


def quality_strict_min_words(instruction, response):
    if len(de.words(response)) <= 3:
        return "too_short"
    return de.quality_problem(instruction, response)


def quality_repetition_on_both(instruction, response):
    if len(de.words(response)) < 3:
        return "too_short"
    both = f"{instruction} {response}"
    if de.alnum_share(both) < 0.7:
        return "symbols"
    if de.english_share(both) < 0.25:
        return "not_english"
    if de.duplicate_ngram_share(both) > 0.2:
        return "repetitive"
    return None


def quality_wrong_order(instruction, response):
    if len(de.words(response)) < 3:
        return "too_short"
    if de.duplicate_ngram_share(response) > 0.2:
        return "repetitive"
    both = f"{instruction} {response}"
    if de.alnum_share(both) < 0.7:
        return "symbols"
    if de.english_share(both) < 0.25:
        return "not_english"
    return None


def quality_language_on_response_only(instruction, response):
    if len(de.words(response)) < 3:
        return "too_short"
    if de.alnum_share(f"{instruction} {response}") < 0.7:
        return "symbols"
    if de.english_share(response) < 0.25:
        return "not_english"
    if de.duplicate_ngram_share(response) > 0.2:
        return "repetitive"
    return None


def _quality(instruction, response, *, count=None, symbols_text=None, less=(0.7, 0.25), more=0.2, n=3,
             trigram_words=None, share=None, min_words=3):
    """The 12.4 rules with one piece swapped for a plausible misreading."""
    if (count or (lambda r: len(de.words(r))))(response) < min_words:
        return "too_short"
    both = f"{instruction} {response}"
    if de.alnum_share(symbols_text(instruction, response) if symbols_text else both) < less[0]:
        return "symbols"
    if de.english_share(both) < less[1]:
        return "not_english"
    w = (trigram_words or de.words)(response)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    if grams:
        rate = share(grams) if share else (len(grams) - len(set(grams))) / len(grams)
        if rate > more:
            return "repetitive"
    return None


def quality_split_word_count(instruction, response):
    return _quality(instruction, response, count=lambda r: len(r.split()))


def quality_inclusive_symbols(instruction, response):
    return _quality(instruction, response, less=(0.7 + 1e-12, 0.25))        # share <= 0.7 counts as symbols


def quality_inclusive_english(instruction, response):
    return _quality(instruction, response, less=(0.7, 0.25 + 1e-12))        # share <= 0.25 counts as not English


def quality_inclusive_repetition(instruction, response):
    return _quality(instruction, response, more=0.2 - 1e-12)               # share >= 0.2 counts as repetitive


def quality_bigram_repetition(instruction, response):
    return _quality(instruction, response, n=2)


def quality_fourgram_repetition(instruction, response):
    return _quality(instruction, response, n=4)


def quality_split_trigrams(instruction, response):
    return _quality(instruction, response, trigram_words=lambda r: r.lower().split())


def quality_symbols_on_response_only(instruction, response):
    return _quality(instruction, response, symbols_text=lambda i, r: r)


def quality_symbols_on_instruction_only(instruction, response):
    return _quality(instruction, response, symbols_text=lambda i, r: i)


def quality_repetition_counts_every_copy(instruction, response):
    def every_copy(grams):
        counts = {g: grams.count(g) for g in grams}
        return sum(c for c in counts.values() if c > 1) / len(grams)
    return _quality(instruction, response, share=every_copy)


def quality_words_of_both(instruction, response):
    return _quality(instruction, response, count=lambda r: len(de.words(f"{instruction} {r}")))


# ---------------------------------------------------------------- 12.5 sequence logprob


def seqlp_mean_not_sum(logits, ids, mask):
    return pt.masked_sequence_logprobs(logits, ids, mask, average=True)


def seqlp_no_shift(logits, ids, mask):
    lp = torch.log_softmax(logits, -1).gather(-1, ids[..., None])[..., 0]
    return (lp * mask).sum(1)


def seqlp_unshifted_mask(logits, ids, mask):
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    return (lp * mask[:, :-1]).sum(1)


def seqlp_includes_prompt(logits, ids, mask):
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    return lp.sum(1)


def seqlp_softmax_over_time(logits, ids, mask):
    lp = torch.log_softmax(logits[:, :-1], 1).gather(-1, ids[:, 1:, None])[..., 0]   # normalises the wrong axis
    return (lp * mask[:, 1:]).sum(1)


def seqlp_raw_logits(logits, ids, mask):
    lp = logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    return (lp * mask[:, 1:]).sum(1)


# ---------------------------------------------------------------- 12.6 DPO loss


def dpo_beta_outside(pc, pr, rc, rr, beta):
    return -beta * torch.nn.functional.logsigmoid((pc - rc) - (pr - rr)).mean()


def dpo_reference_sign_flipped(pc, pr, rc, rr, beta):
    return -torch.nn.functional.logsigmoid(beta * ((pc + rc) - (pr + rr))).mean()


def dpo_without_reference(pc, pr, rc, rr, beta):
    return -torch.nn.functional.logsigmoid(beta * (pc - pr)).mean()


def dpo_unstable_log_of_sigmoid(pc, pr, rc, rr, beta):
    return -torch.log(torch.sigmoid(beta * ((pc - rc) - (pr - rr)))).mean()


def dpo_per_pair(pc, pr, rc, rr, beta):
    return -torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr)))   # (B,), not the mean


def dpo_sum_over_batch(pc, pr, rc, rr, beta):
    return -torch.nn.functional.logsigmoid(beta * ((pc - rc) - (pr - rr))).sum()


def dpo_chosen_rejected_swapped(pc, pr, rc, rr, beta):
    return -torch.nn.functional.logsigmoid(beta * ((pr - rr) - (pc - rc))).mean()


# ---------------------------------------------------------------- 12.7 Bradley-Terry


def bt_sign_flipped(c, r):
    return -torch.nn.functional.logsigmoid(r - c).mean()


def bt_unstable(c, r):
    return -torch.log(torch.sigmoid(c - r)).mean()


def bt_sum(c, r):
    return -torch.nn.functional.logsigmoid(c - r).sum()


def bt_missing_minus(c, r):
    return torch.nn.functional.logsigmoid(c - r).mean()


def bt_pointwise_not_pairwise(c, r):
    return (-torch.nn.functional.logsigmoid(c) - torch.nn.functional.logsigmoid(-r)).mean()


def bt_per_pair(c, r):
    return -torch.nn.functional.logsigmoid(c - r)                   # (B,), not the mean


def _overlap_solution(text, train, n):
    reference = set().union(*(de.word_ngrams(t, n) for t in train))
    return de.ngram_overlap(text, reference, n)


def _dpo_solution(pc, pr, rc, rr, beta):
    return pt.dpo_loss(pc, pr, rc, rr, beta).loss


CASES = [
    CheckCase(ch12.check_jaccard, de.jaccard,
              [jaccard_on_lists, jaccard_over_smaller_set, jaccard_crashes_on_empty, jaccard_intersection_over_sum,
               jaccard_floor_division, jaccard_empty_is_zero]),
    CheckCase(ch12.check_minhash_signature, de.minhash_from_hashes,
              [minhash_max_instead_of_min, minhash_min_over_wrong_axis, minhash_without_mod_prime,
               minhash_mask_before_mod, minhash_exact_integers, minhash_returns_list, minhash_int64]),
    CheckCase(ch12.check_overlap_share, _overlap_solution,
              [overlap_misses_last_ngram, overlap_counts_repeats, overlap_joins_training_texts,
               overlap_without_normalizing, overlap_short_text_is_zero, overlap_skips_short_training_texts]),
    CheckCase(ch12.check_quality_problem, de.quality_problem,
              [quality_strict_min_words, quality_repetition_on_both, quality_wrong_order,
               quality_language_on_response_only, quality_split_word_count, quality_inclusive_symbols,
               quality_inclusive_english, quality_inclusive_repetition, quality_bigram_repetition,
               quality_fourgram_repetition, quality_split_trigrams, quality_symbols_on_response_only,
               quality_symbols_on_instruction_only, quality_repetition_counts_every_copy, quality_words_of_both]),
    CheckCase(ch12.check_sequence_logprob, pt.masked_sequence_logprobs,
              [seqlp_mean_not_sum, seqlp_no_shift, seqlp_unshifted_mask, seqlp_includes_prompt, seqlp_raw_logits,
               seqlp_softmax_over_time]),
    CheckCase(ch12.check_dpo_loss, _dpo_solution,
              [dpo_beta_outside, dpo_reference_sign_flipped, dpo_without_reference, dpo_unstable_log_of_sigmoid,
               dpo_sum_over_batch, dpo_chosen_rejected_swapped, dpo_per_pair]),
    CheckCase(ch12.check_bradley_terry_loss, pt.bradley_terry_loss,
              [bt_sign_flipped, bt_unstable, bt_sum, bt_missing_minus, bt_pointwise_not_pairwise, bt_per_pair]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_minhash_check_passes_on_python_ints_that_apply_the_wrap(capsys):
    ch12.check_minhash_signature(minhash_python_ints_with_wrap)
    assert "✔" in capsys.readouterr().out
