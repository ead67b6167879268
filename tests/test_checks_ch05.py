"""Check-can-fail tests for chapter 05's exercise checks."""

import torch
from checks_harness import CheckCase, make_tests

from llmlab import lora
from llmlab.checks import ch05


def lora_forward(x, W, A, B, alpha):
    return x @ W.T + (alpha / A.shape[0]) * (x @ A.T @ B.T)


def lora_forward_builds_update(x, W, A, B, alpha):
    return x @ (W + (alpha / A.shape[0]) * (B @ A)).T  # right numbers, but builds the d_out x d_in update


def lora_forward_builds_update_transposed(x, W, A, B, alpha):
    return x @ W.T + (alpha / A.shape[0]) * x @ (A.T @ B.T)


def lora_forward_linear(x, W, A, B, alpha):
    """A correct alternative with F.linear (the product B A is never built)."""
    return torch.nn.functional.linear(x, W) + (alpha / A.shape[0]) * torch.nn.functional.linear(
        torch.nn.functional.linear(x, A), B)


def test_lora_forward_passes_a_correct_alternative(capsys):
    ch05.check_lora_forward(lora_forward_linear)
    assert "✔" in capsys.readouterr().out


def lora_forward_floor_scale(x, W, A, B, alpha):
    return x @ W.T + (alpha // A.shape[0]) * (x @ A.T @ B.T)  # 8 // 3 = 2, not 2.67


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
    return params_billion * (2 * bits / 8 + 12)  # fp32 master and states: not AI Engineering's ch. 7 example


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


def lora_forward_without_base(x, W, A, B, alpha):
    return (alpha / A.shape[0]) * (x @ A.T @ B.T)


def lora_forward_r_from_wrong_axis(x, W, A, B, alpha):
    return x @ W.T + (alpha / A.shape[1]) * (x @ A.T @ B.T)


def lora_forward_scale_inverted(x, W, A, B, alpha):
    return x @ W.T + (A.shape[0] / alpha) * (x @ A.T @ B.T)


def params_as_float(d_in, d_out, r, n_matrices):
    return float(n_matrices * r * (d_in + d_out))


def merge_floor_scale(W, A, B, alpha):
    return W + int(alpha / A.shape[0]) * (B @ A)


def merge_returns_only_the_update(W, A, B, alpha):
    return (alpha / A.shape[0]) * (B @ A)


def merge_scaled_by_alpha(W, A, B, alpha):
    return W + alpha * (B @ A)


def memory_as_tensor(params_billion, bits):
    return torch.tensor(params_billion) * bits / 8 * 4  # a 0-d tensor, not a float


def memory_whole_bytes(params_billion, bits):
    return params_billion * (bits // 8) * 4  # 4 bits become 0 bytes, 12 bits become 1 byte


def ties_zero_sum_elects_plus(task_vectors, density):
    trimmed = torch.stack([lora.trim_top_k(t, density) for t in task_vectors])
    sign = torch.where(trimmed.sum(0) >= 0, 1.0, -1.0)  # a zero sum is not a positive sign
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    return (trimmed * agree).sum(0) / agree.sum(0).clamp_min(1)


def memory_weights_only(params_billion, bits):
    return params_billion * bits / 8


def memory_in_gib(params_billion, bits):
    return params_billion * 1e9 * bits / 8 * 4 / 1024 ** 3


def ties_without_trimming(task_vectors, density):
    return lora.ties_merge(task_vectors, 1.0)


def ties_sum_instead_of_mean(task_vectors, density):
    trimmed = torch.stack([lora.trim_top_k(t, density) for t in task_vectors])
    sign = torch.sign(trimmed.sum(0))
    agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
    return (trimmed * agree).sum(0)


def ties_mean_without_sign_election(task_vectors, density):
    trimmed = torch.stack([lora.trim_top_k(t, density) for t in task_vectors])
    return trimmed.sum(0) / (trimmed != 0).sum(0).clamp_min(1)


# ---------------------------------------------------------------- 05.6 LoRALinear


class LoRALinear(torch.nn.Module):
    def __init__(self, base, r, alpha, freeze=True, b_random=False, a_zero=False, scale=None, use_bias=True):
        super().__init__()
        self.base = base
        if freeze:
            base.requires_grad_(False)
        self.lora_A = torch.nn.Parameter(torch.zeros(r, base.in_features) if a_zero
                                         else torch.randn(r, base.in_features) / r)
        self.lora_B = torch.nn.Parameter(torch.randn(base.out_features, r) if b_random
                                         else torch.zeros(base.out_features, r))
        self.scale = alpha / r if scale is None else scale(alpha, r)
        self.use_bias = use_bias

    def forward(self, x):
        out = self.base(x) if self.use_bias else x @ self.base.weight.T
        return out + self.scale * (x @ self.lora_A.T @ self.lora_B.T)


def _lora_class(name, **kwargs):
    def make(base, r, alpha):
        return LoRALinear(base, r, alpha, **kwargs)
    make.__name__ = name
    return make


LORA_LINEAR_MISTAKES = [
    _lora_class("lora_linear_base_not_frozen", freeze=False), _lora_class("lora_linear_b_random", b_random=True),
    _lora_class("lora_linear_a_zero", a_zero=True), _lora_class("lora_linear_scale_alpha", scale=lambda a, r: a),
    _lora_class("lora_linear_no_scale", scale=lambda a, r: 1.0), _lora_class("lora_linear_drops_bias", use_bias=False),
    _lora_class("lora_linear_floor_scale", scale=lambda a, r: a // r)]


class LoRALinearWith2dOnly(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.scale * torch.mm(torch.mm(x, self.lora_A.T), self.lora_B.T)


class LoRALinearPlainTensors(torch.nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.lora_A = torch.randn(r, base.in_features) / r
        self.lora_B = torch.zeros(base.out_features, r)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.lora_A.T @ self.lora_B.T)


# ---------------------------------------------------------------- 05.7 training


def train_lora(layer, x, y, steps, lr):
    return ch05.reference_train(layer, x, y, steps, lr)


def _train(name, zero_grad=True, after_step=False, reduction="mean", optimizer=torch.optim.Adam, as_tensor=False,
           train_base=False):
    def train(layer, x, y, steps, lr):
        if train_base:
            layer.base.requires_grad_(True)
        opt = optimizer([p for p in layer.parameters() if p.requires_grad], lr=lr)
        losses = []
        for _ in range(steps):
            if zero_grad:
                opt.zero_grad()
            loss = torch.nn.functional.mse_loss(layer(x), y, reduction=reduction)
            loss.backward()
            opt.step()
            if after_step:
                with torch.no_grad():
                    loss = torch.nn.functional.mse_loss(layer(x), y, reduction=reduction)
            losses.append(loss if as_tensor else loss.item())
        return losses
    train.__name__ = name
    return train


TRAIN_MISTAKES = [_train("train_without_zero_grad", zero_grad=False), _train("train_loss_after_step", after_step=True),
                  _train("train_sum_loss", reduction="sum"), _train("train_with_sgd", optimizer=torch.optim.SGD),
                  _train("train_returns_tensors", as_tensor=True), _train("train_also_the_base", train_base=True)]


def train_one_step_short(layer, x, y, steps, lr):
    return ch05.reference_train(layer, x, y, steps - 1, lr)


# ---------------------------------------------------------------- 05.8 labels


def mask_prompt_labels(prompt_ids, answer_ids):
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def labels_pre_shifted(prompt_ids, answer_ids):
    ids = prompt_ids + answer_ids
    return ids, ([-100] * len(prompt_ids) + answer_ids)[1:] + [-100]


def labels_masking_zero(prompt_ids, answer_ids):
    return prompt_ids + answer_ids, [0] * len(prompt_ids) + answer_ids


def labels_masking_the_answer(prompt_ids, answer_ids):
    return prompt_ids + answer_ids, prompt_ids + [-100] * len(answer_ids)


def labels_one_too_few_masked(prompt_ids, answer_ids):
    ids = prompt_ids + answer_ids
    return ids, [-100] * (len(prompt_ids) - 1) + ids[len(prompt_ids) - 1:]


def labels_one_too_many_masked(prompt_ids, answer_ids):
    ids = prompt_ids + answer_ids
    return ids, [-100] * (len(prompt_ids) + 1) + answer_ids[1:]


def labels_answer_only(prompt_ids, answer_ids):
    return prompt_ids + answer_ids, answer_ids


def labels_by_value(prompt_ids, answer_ids):
    ids = prompt_ids + answer_ids
    return ids, [-100 if t in prompt_ids else t for t in ids]


CASES = [
    CheckCase(ch05.check_lora_forward, lora_forward, [lora_forward_without_scale, lora_forward_scaled_by_alpha,
              lora_forward_without_base, lora_forward_r_from_wrong_axis, lora_forward_scale_inverted,
              lora_forward_builds_update, lora_forward_builds_update_transposed, lora_forward_floor_scale]),
    CheckCase(ch05.check_lora_param_count, lora.lora_param_count,
              [params_full_matrix_times_r, params_square_assumption, params_forgetting_n, params_as_float]),
    CheckCase(ch05.check_merge_lora_weight, merge_lora_weight, [merge_in_place, merge_without_scale,
              merge_returns_only_the_update, merge_scaled_by_alpha,
              merge_floor_scale]),
    CheckCase(ch05.check_training_memory_gb, full_adam_memory,
              [memory_forgetting_gradients, memory_fp32_master_and_states, memory_bits_as_bytes, memory_weights_only,
               memory_in_gib, memory_whole_bytes, memory_as_tensor]),
    CheckCase(ch05.check_ties_merge, lora.ties_merge,
              [ties_plain_mean, ties_dividing_by_all_vectors, ties_sign_by_vote_count, ties_without_trimming,
               ties_sum_instead_of_mean, ties_mean_without_sign_election, ties_zero_sum_elects_plus]),
    CheckCase(ch05.check_lora_linear, LoRALinear,
              LORA_LINEAR_MISTAKES + [LoRALinearWith2dOnly, LoRALinearPlainTensors]),
    CheckCase(ch05.check_train_lora, train_lora, TRAIN_MISTAKES + [train_one_step_short]),
    CheckCase(ch05.check_mask_prompt_labels, mask_prompt_labels,
              [labels_pre_shifted, labels_masking_zero, labels_masking_the_answer, labels_one_too_few_masked,
               labels_one_too_many_masked, labels_answer_only, labels_by_value]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
