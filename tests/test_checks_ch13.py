"""Check-can-fail tests for chapter 13's exercise checks."""

from checks_harness import CheckCase, make_tests  # noqa: F401

from llmlab.checks import ch13  # noqa: F401

# ------------------------------------------------------------------ first part: FIRST_CASES = [CheckCase(...), ...]

def _pairs(scores, labels, tie=0.5):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        raise ValueError("labels must hold both classes")
    return sum((p > n) + tie * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def auroc(scores, labels):
    return float(_pairs(scores, labels))


def auroc_ties_ignored(scores, labels):
    return float(_pairs(scores, labels, tie=0.0))


def auroc_ties_win(scores, labels):
    return float(_pairs(scores, labels, tie=1.0))


def auroc_labels_inverted(scores, labels):
    return float(_pairs(scores, [not y for y in labels]))


def auroc_sorted_descending(scores, labels):
    """Mann-Whitney with ranks given from the top score down (ties averaged): 1 - AUROC."""
    if all(labels) or not any(labels):
        raise ValueError("labels must hold both classes")
    order = sorted(scores, reverse=True)
    rank = {s: sum(i + 1 for i, v in enumerate(order) if v == s) / order.count(s) for s in set(scores)}
    n_pos = sum(bool(y) for y in labels)
    n_neg = len(labels) - n_pos
    return float((sum(rank[s] for s, y in zip(scores, labels) if y) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc_accuracy_at_half(scores, labels):
    if all(labels) or not any(labels):
        raise ValueError("labels must hold both classes")
    return sum((s >= 0.5) == bool(y) for s, y in zip(scores, labels)) / len(labels)


def auroc_all_pairs_denominator(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        raise ValueError("labels must hold both classes")
    n = len(scores)
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (n * (n - 1) / 2)


def auroc_tensor(scores, labels):
    import torch
    return torch.tensor(_pairs(scores, labels))


def auroc_no_error_on_one_class(scores, labels):
    if all(labels) or not any(labels):
        return 0.5
    return float(_pairs(scores, labels))


def auroc_zero_division(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def auroc_error_without_name(scores, labels):
    if all(labels) or not any(labels):
        raise ValueError("need two classes")
    return float(_pairs(scores, labels))


def selfcheck_exact(answer, samples):
    from llmlab.evaluation.text import normalize
    target = normalize(answer)
    return 1.0 - sum(normalize(s) == target for s in samples) / len(samples)


def selfcheck_exact_with_answer(answer, samples):
    return selfcheck_exact(answer, [answer] + list(samples))


def selfcheck_exact_similarity(answer, samples):
    return 1.0 - selfcheck_exact(answer, samples)


def selfcheck_exact_raw(answer, samples):
    return 1.0 - sum(s == answer for s in samples) / len(samples)


def selfcheck_exact_lower_only(answer, samples):
    return 1.0 - sum(s.lower().strip() == answer.lower().strip() for s in samples) / len(samples)


def selfcheck_exact_count(answer, samples):
    from llmlab.evaluation.text import normalize
    return float(sum(normalize(s) != normalize(answer) for s in samples))


def selfcheck_cosine(answer_vec, sample_vecs):
    import numpy as np
    a = answer_vec / np.linalg.norm(answer_vec)
    s = sample_vecs / np.linalg.norm(sample_vecs, axis=1, keepdims=True)
    return float(1.0 - (s @ a).mean())


def selfcheck_cosine_similarity(answer_vec, sample_vecs):
    return 1.0 - selfcheck_cosine(answer_vec, sample_vecs)


def selfcheck_cosine_unnormalized(answer_vec, sample_vecs):
    return float(1.0 - (sample_vecs @ answer_vec).mean())


def selfcheck_cosine_wrong_axis(answer_vec, sample_vecs):
    import numpy as np
    a = answer_vec / np.linalg.norm(answer_vec)
    s = sample_vecs / np.linalg.norm(sample_vecs, axis=0, keepdims=True)
    return float(1.0 - (s @ a).mean())


def selfcheck_cosine_samples_only_normalized(answer_vec, sample_vecs):
    import numpy as np
    s = sample_vecs / np.linalg.norm(sample_vecs, axis=1, keepdims=True)
    return float(1.0 - (s @ answer_vec).mean())


def selfcheck_cosine_with_answer(answer_vec, sample_vecs):
    import numpy as np
    return selfcheck_cosine(answer_vec, np.vstack([answer_vec, sample_vecs]))


def selfcheck_cosine_per_sample(answer_vec, sample_vecs):
    import numpy as np
    a = answer_vec / np.linalg.norm(answer_vec)
    s = sample_vecs / np.linalg.norm(sample_vecs, axis=1, keepdims=True)
    return 1.0 - s @ a


FIRST_CASES = [
    CheckCase(ch13.check_auroc, auroc,
              wrong=[auroc_ties_ignored, auroc_ties_win, auroc_labels_inverted, auroc_sorted_descending,
                     auroc_accuracy_at_half, auroc_all_pairs_denominator, auroc_tensor, auroc_no_error_on_one_class,
                     auroc_zero_division, auroc_error_without_name]),
    CheckCase(ch13.check_selfcheck_exact, selfcheck_exact,
              wrong=[selfcheck_exact_with_answer, selfcheck_exact_similarity, selfcheck_exact_raw,
                     selfcheck_exact_lower_only, selfcheck_exact_count]),
    CheckCase(ch13.check_selfcheck_cosine, selfcheck_cosine,
              wrong=[selfcheck_cosine_similarity, selfcheck_cosine_unnormalized, selfcheck_cosine_wrong_axis,
                     selfcheck_cosine_samples_only_normalized, selfcheck_cosine_with_answer,
                     selfcheck_cosine_per_sample]),
]


# ------------------------------------------------------------------ second part: SECOND_CASES = [CheckCase(...), ...]
SECOND_CASES: list = []


test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(
    FIRST_CASES + SECOND_CASES)
