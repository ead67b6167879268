"""Check-can-fail tests for chapter 01's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab import evaluation, tokens
from llmlab.checks import ch01


def naive_log_softmax(logits):
    return torch.log(torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True))


def log_softmax_over_first_axis(logits):
    shifted = logits - logits.max()
    return shifted - shifted.exp().sum(dim=0, keepdim=True).log()


def perplexity_of_sum(logprobs):
    return torch.exp(-logprobs.sum()).item()


def perplexity_without_minus(logprobs):
    return torch.exp(logprobs.mean()).item()


CASES = [
    CheckCase(ch01.check_log_softmax, tokens.log_softmax, [naive_log_softmax, log_softmax_over_first_axis]),
    CheckCase(ch01.check_perplexity, evaluation.perplexity_from_logprobs, [perplexity_of_sum, perplexity_without_minus]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
