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
import re  # noqa: E402

import numpy as np  # noqa: E402

from llmlab.product.gateway import FALLBACK_TEXT  # noqa: E402
from llmlab.product.pii import PATTERNS, names_pattern  # noqa: E402


def _mask(text, names, order=None, per_kind=True, reuse=True, start=1, name_re=None, inverted=False):
    """The PII masker with switches for the likely mistakes."""
    patterns = [(k, PATTERNS[k]) for k in (order or PATTERNS)]
    patterns.append(("NAME", name_re(names) if name_re else names_pattern(names)))
    mapping, counter = {}, [start - 1]
    for kind, pattern in patterns:
        seen = {}
        if per_kind:
            counter = [start - 1]

        def place(m, kind=kind, seen=seen):
            value = m.group(0)
            if value not in seen or not reuse:
                counter[0] += 1
                seen[value] = f"<{kind}_{counter[0]}>"
                mapping[seen[value]] = value
            return seen[value]
        text = re.sub(pattern, place, text)
    return text, ({v: k for k, v in mapping.items()} if inverted else mapping)


def mask_ok(text, names):
    return _mask(text, names)


def mask_global_counter(text, names):
    return _mask(text, names, per_kind=False)


def mask_new_placeholder_each_time(text, names):
    return _mask(text, names, reuse=False)


def mask_phones_before_emails(text, names):
    return _mask(text, names, order=["PHONE", "ORDER", "EMAIL"])


def mask_names_in_list_order(text, names):
    return _mask(text, names, name_re=lambda ns: r"\b(?:" + "|".join(map(re.escape, ns)) + r")\b")


def mask_names_without_word_boundaries(text, names):
    return _mask(text, names, name_re=lambda ns: "|".join(map(re.escape, sorted(ns, key=len, reverse=True))))


def mask_numbered_from_zero(text, names):
    return _mask(text, names, start=0)


def mask_inverted_map(text, names):
    return _mask(text, names, inverted=True)


def mask_text_only(text, names):
    return _mask(text, names)[0]


def mask_sorted_numbering(text, names):
    patterns = dict(PATTERNS, NAME=names_pattern(names))
    mapping = {}
    for kind, pattern in patterns.items():
        values = sorted(set(re.findall(pattern, text)))
        places = {v: f"<{kind}_{i + 1}>" for i, v in enumerate(values)}
        mapping.update({p: v for v, p in places.items()})
        text = re.sub(pattern, lambda m, places=places: places[m.group(0)], text)
    return text, mapping


def _lookup(query, keys, owners, answers, user, threshold, strict=False, per_user=True, first=False,
            wrong_index=False, index=False):
    mine = [i for i, o in enumerate(owners) if o == user or not per_user]
    if not mine:
        return None
    sims = keys[mine] @ query
    if first:
        hits = [j for j, s in enumerate(sims) if s >= threshold]
        return answers[mine[hits[0]]] if hits else None
    best = int(np.argmax(sims))
    ok = sims[best] > threshold if strict else sims[best] >= threshold
    if not ok:
        return None
    return best if index else answers[best if wrong_index else mine[best]]


def lookup_ok(*a):
    return _lookup(*a)


def lookup_strict_threshold(*a):
    return _lookup(*a, strict=True)


def lookup_shared_across_users(*a):
    return _lookup(*a, per_user=False)


def lookup_first_above_threshold(*a):
    return _lookup(*a, first=True)


def lookup_index_into_all_answers(*a):
    return _lookup(*a, wrong_index=True)


def lookup_returns_index(*a):
    return _lookup(*a, index=True)


def lookup_crashes_on_empty_cache(query, keys, owners, answers, user, threshold):
    sims = keys @ query
    best = int(np.argmax(sims))
    return answers[best] if owners[best] == user and sims[best] >= threshold else None


def _fallback(engines, prompt, retries, backoff_s, sleep, tries=None, delay=None, swallow=False, half=False,
              raise_all=False, sleep_first=False):
    tries = retries + 1 if tries is None else tries(retries)
    for name, engine in engines:
        parts = []
        for attempt in range(tries):
            if attempt or sleep_first:
                d = delay(backoff_s, attempt) if delay else backoff_s * 2 ** (attempt - 1)
                if d is not None:
                    sleep(d)
            if half:
                try:
                    for chunk in engine(prompt):
                        parts.append(chunk)
                    return "".join(parts), name
                except Exception:
                    continue
            try:
                return "".join(engine(prompt)), name
            except Exception:
                if swallow:
                    return "", name
    if raise_all:
        raise RuntimeError("all engines failed")
    return FALLBACK_TEXT, "fallback"


def fallback_ok(*a):
    return _fallback(*a)


def fallback_retries_as_total_tries(*a):
    return _fallback(*a, tries=lambda r: r)


def fallback_one_try_too_many(*a):
    return _fallback(*a, tries=lambda r: r + 2)


def fallback_no_backoff(*a):
    return _fallback(*a, delay=lambda b, k: None)


def fallback_constant_backoff(*a):
    return _fallback(*a, delay=lambda b, k: b)


def fallback_backoff_doubled_from_the_start(*a):
    return _fallback(*a, delay=lambda b, k: b * 2 ** k)


def fallback_sleeps_before_first_try(*a):
    return _fallback(*a, sleep_first=True, delay=lambda b, k: b * 2 ** (k - 1) if k else b / 2)


def fallback_swallows_error(*a):
    return _fallback(*a, swallow=True)


def fallback_keeps_half_answers(*a):
    return _fallback(*a, half=True)


def fallback_raises_when_all_fail(*a):
    return _fallback(*a, raise_all=True)


def fallback_gives_up_after_first_engine(engines, prompt, retries, backoff_s, sleep):
    return _fallback(engines[:1], prompt, retries, backoff_s, sleep)


SECOND_CASES = [
    CheckCase(ch13.check_mask_pii, mask_ok,
              wrong=[mask_global_counter, mask_new_placeholder_each_time, mask_phones_before_emails,
                     mask_names_in_list_order, mask_names_without_word_boundaries, mask_numbered_from_zero,
                     mask_inverted_map, mask_text_only, mask_sorted_numbering]),
    CheckCase(ch13.check_semantic_lookup, lookup_ok,
              wrong=[lookup_strict_threshold, lookup_shared_across_users, lookup_first_above_threshold,
                     lookup_index_into_all_answers, lookup_returns_index, lookup_crashes_on_empty_cache]),
    CheckCase(ch13.check_call_with_fallback, fallback_ok,
              wrong=[fallback_retries_as_total_tries, fallback_one_try_too_many, fallback_no_backoff,
                     fallback_constant_backoff, fallback_backoff_doubled_from_the_start,
                     fallback_sleeps_before_first_try, fallback_swallows_error, fallback_keeps_half_answers,
                     fallback_raises_when_all_fail, fallback_gives_up_after_first_engine]),
]


test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(
    FIRST_CASES + SECOND_CASES)
