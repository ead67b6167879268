"""Check-can-fail tests for chapter 02's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab import sampling, structured
from llmlab.checks import ch02


def softmax_times_temperature(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)


def softmax_over_batch_axis(logits, temperature):
    return torch.softmax(logits / temperature, dim=0)


def top_k_zeroes_instead_of_inf(logits, k):
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


def top_k_off_by_one(logits, k):
    values = logits.sort(dim=-1, descending=True).values
    kth = values[..., min(k, logits.shape[-1] - 1):min(k, logits.shape[-1] - 1) + 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_drops_the_crossing_token(logits, top_p):
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = torch.zeros_like(cum, dtype=torch.bool).scatter(-1, order, cum > top_p)
    return logits.masked_fill(drop, float("-inf"))


def min_p_absolute_threshold(logits, min_p):
    return logits.masked_fill(logits.softmax(-1) < min_p, float("-inf"))


def select_by_sum(logprobs):
    sums = [sum(x) for x in logprobs]
    return sums.index(max(sums))


def mask_ignoring_generated(token_texts, generated, choices):
    return [any(c.startswith(t) for c in choices) for t in token_texts]


def mask_token_is_a_choice(token_texts, generated, choices):
    return [generated + t in choices for t in token_texts]


CASES = [
    CheckCase(ch02.check_softmax_with_temperature, sampling.softmax_with_temperature,
              [softmax_times_temperature, softmax_over_batch_axis]),
    CheckCase(ch02.check_top_k_filter, sampling.top_k_filter, [top_k_zeroes_instead_of_inf, top_k_off_by_one]),
    CheckCase(ch02.check_top_p_filter, sampling.top_p_filter, [top_p_drops_the_crossing_token]),
    CheckCase(ch02.check_min_p_filter, sampling.min_p_filter, [min_p_absolute_threshold]),
    CheckCase(ch02.check_select_best, sampling.select_best, [select_by_sum]),
    CheckCase(ch02.check_choice_mask, structured.choice_mask, [mask_ignoring_generated, mask_token_is_a_choice]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
