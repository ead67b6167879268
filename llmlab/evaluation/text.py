"""Metrics that compare a prediction with a reference text: exact, contains, token F1, edit distance, BLEU, ROUGE-L,
semantic similarity."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Callable, Sequence

from llmlab import validate as V

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    V.text("text", text, allow_empty=True)
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str, normalized: bool = True) -> bool:
    """Whether prediction equals reference (after `normalize` unless normalized=False)."""
    V.text("prediction", prediction, allow_empty=True)
    V.text("reference", reference, allow_empty=True)
    if normalized:
        return normalize(prediction) == normalize(reference)
    return prediction == reference


def contains_match(prediction: str, reference: str) -> bool:
    """Whether the normalised reference occurs in the normalised prediction (lenient, and fooled by partial answers)."""
    V.text("prediction", prediction, allow_empty=True)
    V.text("reference", reference)
    return f" {normalize(reference)} " in f" {normalize(prediction)} "


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: harmonic mean of precision and recall of the normalised tokens, counted as multisets."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance: fewest insertions, deletions and substitutions turning a into b (str or token lists)."""
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
    """Length of the longest common subsequence of two token lists."""
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
    """ROUGE-L F1 between two texts: LCS-based precision and recall on lower-cased alphanumeric tokens."""
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
