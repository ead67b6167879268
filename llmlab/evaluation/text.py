"""Metrics that compare a prediction with a reference text: exact, contains, token F1, edit distance, BLEU, ROUGE-L,
semantic similarity."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Sequence

from llmlab import validate as V

_ARTICLES = frozenset({"a", "an", "the"})
# a punctuation mark goes unless it sits between two letters/digits (3.90, TB-1156, 13:00); %, : and + always stay
_PUNCTUATION = re.compile(r"(?<![0-9a-z])[^\w\s%:+]|[^\w\s%:+](?![0-9a-z])")


def normalize(text: str) -> str:
    """SQuAD-style normalisation that keeps numbers and codes whole: lower case, punctuation removed (except inside
    numbers and codes, and %, :, +), articles dropped, single spaces; the kit's one answer normaliser.

    >>> normalize("The price is 3.90 EUR, code TB-1156!")
    'price is 3.90 eur code tb-1156'
    """
    V.text("text", text, allow_empty=True)
    return " ".join(t for t in _PUNCTUATION.sub(" ", text.lower()).split() if t not in _ARTICLES)


def _answers(name: str, reference: str | Sequence[str], allow_empty: bool) -> list[str]:
    """One accepted answer or a non-empty list of them, as a list of str."""
    if isinstance(reference, str):
        return [V.text(name, reference, allow_empty=allow_empty)]
    if not isinstance(reference, (list, tuple)):
        raise TypeError(f"{name} must be a str or a list of str, got {type(reference).__name__}")
    V.non_empty(name, reference)
    return [V.text(f"{name}[{i}]", r, allow_empty=allow_empty) for i, r in enumerate(reference)]


def exact_match(prediction: str, reference: str | Sequence[str], normalized: bool = True) -> bool:
    """Whether prediction equals the reference, or one of a list of accepted answers (after `normalize` unless
    normalized=False).

    >>> exact_match("Paris.", "paris"), exact_match("24 Months.", ["two years", "24 months"])
    (True, True)
    """
    V.text("prediction", prediction, allow_empty=True)
    answers = _answers("reference", reference, allow_empty=True)
    if normalized:
        return any(normalize(prediction) == normalize(a) for a in answers)
    return prediction in answers


def contains_match(prediction: str, reference: str | Sequence[str]) -> bool:
    """Whether the normalised reference (or one of a list of accepted answers) occurs in the normalised prediction as
    whole words (lenient, and fooled by partial answers).

    >>> contains_match("It costs 3.90 euros.", "3.90"), contains_match("It costs 13.90 euros.", ["3.90"])
    (True, False)
    """
    V.text("prediction", prediction, allow_empty=True)
    pred = f" {normalize(prediction)} "
    answers = [normalize(a) for a in _answers("reference", reference, allow_empty=False)]
    return any(a and f" {a} " in pred for a in answers)


def number_match(prediction: str, reference: str | float, tol: float = 1e-6) -> bool:
    """Whether a number in the prediction equals the reference number by value (thousands commas ignored).

    >>> number_match("It is 156.5 euros", "156.50"), number_match("1,200 units", 1200), number_match("1565", 156.5)
    (True, True, False)
    """
    V.text("prediction", prediction, allow_empty=True)
    if isinstance(reference, bool) or not isinstance(reference, (str, int, float)):
        raise TypeError(f"reference must be a number or a str, got {type(reference).__name__}")
    try:
        target = float(reference)
    except ValueError:
        raise ValueError(f"reference must be a number or a str holding one, got {reference!r}") from None
    numbers = re.findall(r"-?\d+(?:\.\d+)?", prediction.replace(",", ""))
    return any(abs(float(n) - target) < tol for n in numbers)


def final_number(prediction: str) -> float | None:
    """The last number in a text (thousands commas ignored), the answer of a worked solution; None if there is none.

    >>> final_number("3 bags of 4 is 12, plus 5 makes 17."), final_number("1,200 units"), final_number("none")
    (17.0, 1200.0, None)
    """
    V.text("prediction", prediction, allow_empty=True)
    numbers = re.findall(r"-?\d+(?:\.\d+)?", prediction.replace(",", ""))
    return float(numbers[-1]) if numbers else None


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: harmonic mean of precision and recall of the normalised tokens, counted as multisets.

    >>> round(token_f1("the cat sat", "a cat sat down"), 3)
    0.8
    """
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning a into b (str or token lists).

    >>> edit_distance("kitten", "sitting")
    3
    """
    if isinstance(a, str) != isinstance(b, str):
        raise TypeError(f"a and b must both be str or both be sequences, got {type(a).__name__} and "
                        f"{type(b).__name__}")
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams of a token list."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    """Non-empty, same-length lists of str."""
    V.non_empty("predictions", predictions)
    V.non_empty("references", references)
    V.same_length(("predictions", "references"), predictions, references)
    for name, items in (("predictions", predictions), ("references", references)):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"{name}[{i}] must be a str, got {type(item).__name__}")


def bleu(predictions: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU (0-100) with one reference each: clipped n-gram precisions up to max_n, geometric mean, brevity
    penalty. Whitespace tokens, no smoothing; sacrebleu's 'none' tokenizer gives the same number."""
    _check_pairs(predictions, references)
    V.integer("max_n", max_n, low=1, high=8)
    matches, totals = [0] * max_n, [0] * max_n
    pred_len = ref_len = 0
    for pred, ref in zip(predictions, references):
        p, r = pred.split(), ref.split()
        pred_len, ref_len = pred_len + len(p), ref_len + len(r)
        for n in range(1, max_n + 1):
            pc, rc = _ngrams(p, n), _ngrams(r, n)
            matches[n - 1] += sum((pc & rc).values())
            totals[n - 1] += max(len(p) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    brevity = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / max(pred_len, 1))
    return 100 * brevity * math.exp(log_precision)


def sacrebleu_bleu(predictions: Sequence[str], references: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) by sacrebleu, the reference implementation (one reference per prediction)."""
    import sacrebleu

    _check_pairs(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=tokenize).score)


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence of two token lists.

    >>> lcs_length("abcde", "ace")
    3
    """
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenisation: lower case, runs of [a-z0-9]."""
    return re.findall(r"[a-z0-9]+", text.lower())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 between two texts: LCS-based precision and recall on lower-cased alphanumeric tokens.

    >>> round(rouge_l("the cat sat on the mat", "the cat is on the mat"), 3)
    0.833
    """
    V.text("prediction", prediction, allow_empty=True)
    V.text("reference", reference, allow_empty=True)
    p, r = _rouge_tokens(prediction), _rouge_tokens(reference)
    lcs = lcs_length(p, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def rouge_score_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 by Google's rouge-score package (no stemming), the reference implementation."""
    from rouge_score import rouge_scorer

    V.text("prediction", prediction, allow_empty=True)
    V.text("reference", reference, allow_empty=True)
    return float(rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure)


def embedding_model():
    """all-MiniLM-L6-v2 through sentence-transformers, loaded once (llmlab.retrieval.dense owns the loading)."""
    from llmlab.retrieval.dense import load_encoder

    return load_encoder()


def semantic_similarity(a: Sequence[str], b: Sequence[str], encoder: Callable | None = None) -> list[float]:
    """Cosine similarity of each pair (a[i], b[i]) of sentence embeddings (all-MiniLM-L6-v2 unless `encoder`)."""
    _check_pairs(a, b)
    encode = encoder or (lambda texts: embedding_model().encode(texts, convert_to_tensor=True,
                                                                normalize_embeddings=True))
    import torch

    ea, eb = encode(list(a)), encode(list(b))
    ea, eb = torch.as_tensor(ea, dtype=torch.float32), torch.as_tensor(eb, dtype=torch.float32)
    return torch.nn.functional.cosine_similarity(ea, eb, dim=-1).tolist()


def mean_metric(metric: Callable[[str, str], float], predictions: Sequence[str], references: Sequence[str]) -> float:
    """Average of a per-pair metric (exact_match, token_f1, rouge_l, ...) over aligned lists."""
    _check_pairs(predictions, references)
    return sum(float(metric(p, r)) for p, r in zip(predictions, references)) / len(predictions)
