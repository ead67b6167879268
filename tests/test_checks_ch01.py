"""Check-can-fail tests for chapter 01's exercise checks."""

from collections import Counter

import torch
import torch.nn.functional as F
from checks_harness import CheckCase, make_tests

from llmlab import bpe, evaluation, tokens
from llmlab.checks import ch01

# ---------------------------------------------------------------- 01.1 log_softmax


def naive_log_softmax(logits):
    return torch.log(torch.exp(logits) / torch.exp(logits).sum(dim=-1, keepdim=True))


def softmax_then_log(logits):
    e = logits.exp()
    return (e / e.sum(-1, keepdim=True)).log()


def shift_then_log_of_probabilities(logits):
    e = (logits - logits.amax(-1, keepdim=True)).exp()
    return (e / e.sum(-1, keepdim=True)).log()


def shift_by_global_max(logits):
    shifted = logits - logits.max()
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def log_softmax_over_first_axis(logits):
    shifted = logits - logits.max()
    return shifted - shifted.exp().sum(dim=0, keepdim=True).log()


def calls_torch_log_softmax(logits):
    return torch.log_softmax(logits, dim=-1)


def calls_tensor_method(logits):
    return logits.log_softmax(-1)


def calls_functional(logits):
    return F.log_softmax(logits, dim=-1)


def calls_logsumexp(logits):
    return logits - torch.logsumexp(logits, dim=-1, keepdim=True)


def returns_float32_always(logits):
    logits = logits.float()
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def max_without_keepdim(logits):
    shifted = logits - logits.max(dim=-1).values  # broadcasts against the wrong axis for a batch
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


def hard_coded_dim_1(logits):
    shifted = logits - logits.amax(dim=1, keepdim=True)
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


# ---------------------------------------------------------------- 01.2 perplexity


def perplexity_of_sum(logprobs):
    return torch.exp(-logprobs.sum()).item()


def perplexity_without_minus(logprobs):
    return torch.exp(logprobs.mean()).item()


def perplexity_as_tensor(logprobs):
    return torch.exp(-logprobs.mean())


def perplexity_mean_of_inverse_probabilities(logprobs):
    return torch.exp(-logprobs).mean().item()


def perplexity_n_minus_1(logprobs):
    return float(torch.exp(-logprobs.sum() / max(len(logprobs) - 1, 1)))


def perplexity_base_2(logprobs):
    return 2 ** (-logprobs.mean().item())


def perplexity_mean_negative_logprob(logprobs):
    return -logprobs.mean().item()


# ---------------------------------------------------------------- 01.3 merge_pair


def merge_overlapping(ids, pair, new_id):
    out = list(ids)
    for i in range(len(ids) - 1):
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out[i] = new_id
    return [x for i, x in enumerate(out) if not (i > 0 and out[i - 1] == new_id and ids[i - 1:i + 1] == list(pair))]


def merge_right_to_left(ids, pair, new_id):
    return bpe.merge_pair(ids[::-1], pair[::-1], new_id)[::-1]


def merge_misses_last_pair(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out + list(ids[i:]) if i == len(ids) - 1 and not out[-1:] == [new_id] else out


def merge_in_place(ids, pair, new_id):
    merged = bpe.merge_pair(ids, pair, new_id)
    ids[:] = merged
    return ids


def merge_either_order(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and {ids[i], ids[i + 1]} == set(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return list(ids[:i]) + [new_id] + list(ids[i + 2:])  # stops after the first match
    return list(ids)


def merge_returns_tuple(ids, pair, new_id):
    return tuple(bpe.merge_pair(ids, pair, new_id))


# ---------------------------------------------------------------- 01.4 train_bpe


def train_ties_by_smallest_pair(chunks, num_merges):
    return _train_with_tie_rule(chunks, num_merges, min)


def _train_with_tie_rule(chunks, num_merges, pick):
    merges = []
    for i in range(num_merges):
        counts = bpe.pair_counts(chunks)
        if not counts:
            break
        top = max(counts.values())
        best = pick([p for p, n in counts.items() if n == top])
        merges.append(best)
        chunks = [bpe.merge_pair(c, best, 256 + i) for c in chunks]
    return merges


def train_ties_last_seen(chunks, num_merges):
    return _train_with_tie_rule(chunks, num_merges, lambda tied: tied[-1])


def train_ties_by_largest_pair(chunks, num_merges):
    return _train_with_tie_rule(chunks, num_merges, max)


def train_across_chunks(chunks, num_merges):
    return bpe.train_bpe([[x for c in chunks for x in c]], num_merges)


def train_ids_from_255(chunks, num_merges):
    merges = []
    for i in range(num_merges):
        counts = bpe.pair_counts(chunks)
        if not counts:
            break
        best = max(counts, key=counts.__getitem__)
        merges.append(best)
        chunks = [bpe.merge_pair(c, best, 255 + i) for c in chunks]
    return merges


def train_without_applying_merges(chunks, num_merges):
    counts = bpe.pair_counts(chunks)
    return [p for p, _ in counts.most_common(num_merges)]


def train_counting_unique_pairs_per_chunk(chunks, num_merges):
    merges = []
    for i in range(num_merges):
        counts = Counter()
        for c in chunks:
            for p in dict.fromkeys(zip(c, c[1:])):
                counts[p] += 1
        if not counts:
            break
        best = max(counts, key=counts.__getitem__)
        merges.append(best)
        chunks = [bpe.merge_pair(c, best, 256 + i) for c in chunks]
    return merges


def train_one_merge_too_few(chunks, num_merges):
    return bpe.train_bpe(chunks, max(num_merges - 1, 0))


def train_pads_with_repeats(chunks, num_merges):
    merges = bpe.train_bpe(chunks, num_merges)
    return merges + [merges[-1]] * (num_merges - len(merges))


# ---------------------------------------------------------------- 01.5 next_token_loss


def next_token_loss(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


def loss_without_shift(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def loss_shifted_the_wrong_way(logits, labels):
    return F.cross_entropy(logits[:, 1:].reshape(-1, logits.shape[-1]), labels[:, :-1].reshape(-1))


def loss_mean_of_row_means(logits, labels):
    rows = [F.cross_entropy(logits[i, :-1], labels[i, 1:]) for i in range(logits.shape[0])]
    return torch.stack(rows).mean()


def loss_summed(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), reduction="sum")


def loss_masked_labels_as_zero(logits, labels):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].clamp_min(0).reshape(-1))


def loss_as_float(logits, labels):
    return next_token_loss(logits, labels).item()


def loss_per_token(logits, labels):
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:], reduction="none")


CASES = [
    CheckCase(ch01.check_log_softmax, tokens.log_softmax,
              [naive_log_softmax, softmax_then_log, shift_then_log_of_probabilities, shift_by_global_max,
               log_softmax_over_first_axis, calls_torch_log_softmax, calls_tensor_method, calls_functional,
               calls_logsumexp, returns_float32_always, hard_coded_dim_1, max_without_keepdim]),
    CheckCase(ch01.check_perplexity, evaluation.perplexity_from_logprobs,
              [perplexity_of_sum, perplexity_without_minus, perplexity_as_tensor,
               perplexity_mean_of_inverse_probabilities, perplexity_base_2, perplexity_mean_negative_logprob,
               perplexity_n_minus_1]),
    CheckCase(ch01.check_merge_pair, bpe.merge_pair,
              [merge_overlapping, merge_right_to_left, merge_misses_last_pair, merge_in_place, merge_either_order,
               merge_returns_tuple, merge_first_only]),
    CheckCase(ch01.check_train_bpe, bpe.train_bpe,
              [train_ties_by_smallest_pair, train_across_chunks, train_ids_from_255, train_without_applying_merges,
               train_counting_unique_pairs_per_chunk, train_one_merge_too_few, train_pads_with_repeats,
               train_ties_last_seen, train_ties_by_largest_pair]),
    CheckCase(ch01.check_next_token_loss, next_token_loss,
              [loss_without_shift, loss_shifted_the_wrong_way, loss_mean_of_row_means, loss_summed,
               loss_masked_labels_as_zero, loss_as_float, loss_per_token]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_log_softmax_message_names_the_forbidden_call():
    import pytest

    from llmlab.checks import CheckFailed
    with pytest.raises(CheckFailed, match="calls torch.log_softmax"):
        ch01.check_log_softmax(calls_torch_log_softmax)
    with pytest.raises(CheckFailed, match="non-finite"):
        ch01.check_log_softmax(shift_then_log_of_probabilities)
    with pytest.raises(CheckFailed, match="predict the token at t \\+ 1"):
        ch01.check_next_token_loss(loss_without_shift)
