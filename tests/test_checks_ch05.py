"""Check-can-fail tests for chapter 05's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab import lora
from llmlab.checks import ch05


def lora_forward(x, W, A, B, alpha):
    return x @ W.T + (alpha / A.shape[0]) * (x @ A.T @ B.T)


def lora_forward_without_scale(x, W, A, B, alpha):
    return x @ W.T + x @ A.T @ B.T


def lora_forward_scaled_by_alpha(x, W, A, B, alpha):
    return x @ W.T + alpha * (x @ A.T @ B.T)


def params_full_matrix_times_r(d_in, d_out, r, n_matrices):
    return n_matrices * r * d_in * d_out


def params_square_assumption(d_in, d_out, r, n_matrices):
    return n_matrices * 2 * r * d_in


def params_forgetting_n(d_in, d_out, r, n_matrices):
    return r * (d_in + d_out)


def merge_lora_weight(W, A, B, alpha):
    return W + (alpha / A.shape[0]) * (B @ A)


def merge_in_place(W, A, B, alpha):
    W += (alpha / A.shape[0]) * (B @ A)
    return W


def merge_without_scale(W, A, B, alpha):
    return W + B @ A


def full_adam_memory(params_billion, bits):
    return params_billion * bits / 8 * 4  # weights, gradients, two Adam states


def memory_forgetting_gradients(params_billion, bits):
    return params_billion * bits / 8 * 3


def memory_fp32_master_and_states(params_billion, bits):
    return params_billion * (2 * bits / 8 + 12)  # mixed precision: fp32 master copy and states, not the book's rule


def memory_bits_as_bytes(params_billion, bits):
    return params_billion * bits * 4


def ties_plain_mean(task_vectors, density):
    return torch.stack(task_vectors).mean(0)


def ties_dividing_by_all_vectors(task_vectors, density):
    trimmed = torch.stack([lora.trim_top_k(t, density) for t in task_vectors])
    sign = torch.sign(trimmed.sum(0))
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    return (trimmed * agree).sum(0) / len(task_vectors)


def ties_sign_by_vote_count(task_vectors, density):
    trimmed = torch.stack([lora.trim_top_k(t, density) for t in task_vectors])
    sign = torch.sign(torch.sign(trimmed).sum(0))
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    return (trimmed * agree).sum(0) / agree.sum(0).clamp_min(1)


CASES = [
    CheckCase(ch05.check_lora_forward, lora_forward, [lora_forward_without_scale, lora_forward_scaled_by_alpha]),
    CheckCase(ch05.check_lora_param_count, lora.lora_param_count,
              [params_full_matrix_times_r, params_square_assumption, params_forgetting_n]),
    CheckCase(ch05.check_merge_lora_weight, merge_lora_weight, [merge_in_place, merge_without_scale]),
    CheckCase(ch05.check_training_memory_gb, full_adam_memory,
              [memory_forgetting_gradients, memory_fp32_master_and_states, memory_bits_as_bytes]),
    CheckCase(ch05.check_ties_merge, lora.ties_merge,
              [ties_plain_mean, ties_dividing_by_all_vectors, ties_sign_by_vote_count]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
