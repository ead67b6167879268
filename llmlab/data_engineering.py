"""Dataset engineering: exact and near-duplicate detection (MinHash + LSH), quality filters, n-gram
decontamination, self-instruct synthetic data, and a small downstream score to measure each step.

MinHash here reproduces `datasketch.MinHash(num_perm, seed, scheme="legacy")` bit for bit (same SHA-1 32-bit
hash, same random permutations, same uint64 arithmetic), and `lsh_candidates` finds the same candidate pairs as
`datasketch.MinHashLSH(params=(bands, rows))`; tests check both.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

from llmlab import validate as V
from llmlab.evaluation.lm import perplexity_from_logprobs

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been being it
its this that these those what which who whom how when where why do does did not no yes you your i me my we our
they them their he she his her there here can could will would should may might must than then so too very
about into over under more most some any all each every one two make makes give name tell write""".split())


# ---------------------------------------------------------------- text, exact duplicates


def normalize(text: str) -> str:
    """Lower-case, keep letters/digits/apostrophes, collapse whitespace: 'Hi,  THERE!' -> 'hi there'."""
    V.text("text", text, allow_empty=True)
    return " ".join(_WORD.findall(text.lower()))


def words(text: str) -> list[str]:
    """The normalized words of a text."""
    return normalize(text).split()


def content_hash(text: str) -> str:
    """SHA-1 hex digest of the normalized text: equal for texts that differ only in case/spacing/punctuation."""
    return hashlib.sha1(normalize(text).encode("utf-8")).hexdigest()


def exact_duplicates(texts: Sequence[str]) -> list[int]:
    """Indices of texts whose normalized form already appeared earlier (the first copy is kept)."""
    V.non_empty("texts", texts)
    seen: set[str] = set()
    dups = []
    for i, text in enumerate(texts):
        h = content_hash(text)
        if h in seen:
            dups.append(i)
        seen.add(h)
    return dups


# ---------------------------------------------------------------- shingles, Jaccard, MinHash, LSH


def char_shingles(text: str, k: int = 5) -> set[str]:
    """The set of k-character substrings of the normalized text (the whole text if it is shorter than k)."""
    V.positive_int("k", k)
    t = normalize(text)
    if len(t) <= k:
        return {t} if t else set()
    return {t[i:i + k] for i in range(len(t) - k + 1)}


def jaccard(a: Iterable, b: Iterable) -> float:
    """|A ∩ B| / |A ∪ B| of the two collections taken as sets (two empty sets are identical: 1.0)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def sha1_hash32(data: bytes) -> int:
    """The first 4 bytes of SHA-1, little-endian: datasketch's default 32-bit hash."""
    return struct.unpack("<I", hashlib.sha1(data).digest()[:4])[0]


def minhash_permutations(num_perm: int = 128, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), each (num_perm,) uint64: the random hash functions h -> (a*h + b) mod p, drawn as datasketch does."""
    V.positive_int("num_perm", num_perm)
    V.integer("seed", seed, low=0)
    gen = np.random.RandomState(seed)
    ab = np.array([(gen.randint(1, _MERSENNE, dtype=np.uint64), gen.randint(0, _MERSENNE, dtype=np.uint64))
                   for _ in range(num_perm)], dtype=np.uint64).T
    return ab[0], ab[1]


def minhash_from_hashes(hashes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) uint64 signature from (N,) item hashes: for each p, min over items of ((a[p]*h + b[p]) mod M61) & (2**32-1).

    M61 = 2**61 - 1. With numpy uint64, a*h wraps modulo 2**64 first, exactly as datasketch computes it.
    An empty set gives 2**32 - 1 everywhere.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    if hashes.size == 0:
        return np.full(len(a), _MAX_HASH, dtype=np.uint64)
    permuted = np.bitwise_and((np.outer(hashes, a) + b) % _MERSENNE, _MAX_HASH)  # (N, P)
    return permuted.min(axis=0)


def minhash_signature(items: Iterable[str], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """(num_perm,) uint64 MinHash signature of a set of strings (SHA-1 32-bit hashes, datasketch's permutations)."""
    a, b = minhash_permutations(num_perm, seed)
    hashes = np.array([sha1_hash32(s.encode("utf-8")) for s in set(items)], dtype=np.uint64)
    return minhash_from_hashes(hashes, a, b)


def minhash_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """Estimated Jaccard similarity: the share of positions where two signatures agree."""
    if not isinstance(sig_a, np.ndarray) or not isinstance(sig_b, np.ndarray) or sig_a.shape != sig_b.shape:
        raise ValueError(f"sig_a and sig_b must be numpy arrays of the same shape, got "
                         f"{getattr(sig_a, 'shape', type(sig_a).__name__)} and "
                         f"{getattr(sig_b, 'shape', type(sig_b).__name__)}")
    return float((sig_a == sig_b).mean())


def lsh_candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance two sets of Jaccard `similarity` share at least one of `bands` bands of `rows` rows: 1-(1-s^r)^b."""
    V.probability("similarity", similarity)
    V.positive_int("bands", bands)
    V.positive_int("rows", rows)
    return 1.0 - (1.0 - similarity ** rows) ** bands


def lsh_candidates(signatures: Sequence[np.ndarray], bands: int, rows: int) -> set[tuple[int, int]]:
    """Pairs (i, j), i < j, whose signatures agree on every row of at least one band (bands*rows <= num_perm)."""
    V.non_empty("signatures", signatures)
    V.positive_int("bands", bands)
    V.positive_int("rows", rows)
    if bands * rows > len(signatures[0]):
        raise ValueError(f"bands * rows must be <= num_perm = {len(signatures[0])}, got {bands} * {rows}")
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for i, sig in enumerate(signatures):
            buckets[sig[band * rows:(band + 1) * rows].tobytes()].append(i)
        for members in buckets.values():
            pairs.update(combinations(members, 2))
    return pairs


def near_duplicates(texts: Sequence[str], threshold: float = 0.7, k: int = 5, num_perm: int = 128,
                    bands: int = 16, rows: int = 8, seed: int = 1) -> list[tuple[int, int, float]]:
    """(i, j, estimated Jaccard) for LSH candidate pairs whose MinHash Jaccard of k-char shingles >= threshold."""
    V.probability("threshold", threshold)
    sigs = [minhash_signature(char_shingles(t, k), num_perm, seed) for t in V.non_empty("texts", texts)]
    found = []
    for i, j in sorted(lsh_candidates(sigs, bands, rows)):
        estimate = minhash_jaccard(sigs[i], sigs[j])
        if estimate >= threshold:
            found.append((i, j, estimate))
    return found


def drop_near_duplicates(texts: Sequence[str], threshold: float = 0.7, **minhash) -> list[int]:
    """Indices to drop so that no kept pair is a near duplicate: of each pair, the later text goes."""
    drop: set[int] = set()
    for i, j, _ in near_duplicates(texts, threshold, **minhash):
        if i not in drop:
            drop.add(j)
    return sorted(drop)


# ---------------------------------------------------------------- quality filters


def english_share(text: str) -> float:
    """Share of the alphabetic words that are common English function words (0 when there are none)."""
    alpha = [w for w in words(text) if w.isalpha()]
    return sum(w in STOPWORDS for w in alpha) / len(alpha) if alpha else 0.0


def alnum_share(text: str) -> float:
    """Share of the non-space characters that are letters or digits (symbol noise scores low)."""
    chars = [c for c in V.text("text", text, allow_empty=True) if not c.isspace()]
    return sum(c.isalnum() for c in chars) / len(chars) if chars else 0.0


def duplicate_ngram_share(text: str, n: int = 3) -> float:
    """Share of the word n-grams that repeat an earlier n-gram of the same text (0 for under n+1 words)."""
    V.positive_int("n", n)
    w = words(text)
    grams = [tuple(w[i:i + n]) for i in range(len(w) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


@dataclass(frozen=True)
class QualityRules:
    """Thresholds of the quality filter (defaults suit the chapter's short answers)."""

    min_words: int = 3
    max_words: int = 120
    min_english: float = 0.25
    min_alnum: float = 0.7
    max_repeated: float = 0.2


def quality_problem(instruction: str, response: str, rules: QualityRules = QualityRules()) -> str | None:
    """The first rule a row breaks ('too_short', 'too_long', 'symbols', 'not_english', 'repetitive') or None."""
    V.text("instruction", instruction, allow_empty=True)
    V.text("response", response, allow_empty=True)
    n = len(words(response))
    if n < rules.min_words:
        return "too_short"
    if n > rules.max_words:
        return "too_long"
    both = f"{instruction} {response}"
    if alnum_share(both) < rules.min_alnum:
        return "symbols"
    if english_share(both) < rules.min_english:
        return "not_english"
    if duplicate_ngram_share(response) > rules.max_repeated:
        return "repetitive"
    return None


# ---------------------------------------------------------------- decontamination


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The set of word n-grams of the normalized text: len(words) - n + 1 of them (the whole text if shorter)."""
    V.positive_int("n", n)
    w = words(text)
    if len(w) < n:
        return {tuple(w)} if w else set()
    return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}


def ngram_overlap(text: str, reference: set[tuple[str, ...]], n: int) -> float:
    """Share of the text's word n-grams that occur in `reference` (a set built with word_ngrams)."""
    grams = word_ngrams(text, n)
    return sum(g in reference for g in grams) / len(grams) if grams else 0.0


def contaminated(test_texts: Sequence[str], train_texts: Sequence[str], n: int = 8,
                 threshold: float = 0.5) -> list[int]:
    """Indices of test texts whose share of word n-grams found in the training texts is >= threshold."""
    V.probability("threshold", threshold, open_low=True)
    reference: set[tuple[str, ...]] = set()
    for t in V.non_empty("train_texts", train_texts):
        reference |= word_ngrams(t, n)
    return [i for i, t in enumerate(V.non_empty("test_texts", test_texts))
            if ngram_overlap(t, reference, n) >= threshold]


def train_rows_overlapping(train_texts: Sequence[str], test_texts: Sequence[str], n: int = 8,
                           threshold: float = 0.5) -> list[int]:
    """Indices of training texts that contaminate the test set (the same test, run the other way round)."""
    return contaminated(train_texts, test_texts, n, threshold)


# ---------------------------------------------------------------- a downstream score: a word-bigram language model


@dataclass
class BigramLM:
    """Word bigram counts with interpolated add-one unigram smoothing: a language model fit in milliseconds."""

    unigrams: Counter
    bigrams: Counter
    lam: float = 0.7

    @classmethod
    def fit(cls, texts: Sequence[str], lam: float = 0.7) -> "BigramLM":
        """Count the words (with <s> and </s>) of the texts."""
        V.probability("lam", lam)
        uni, bi = Counter(), Counter()
        for t in V.non_empty("texts", texts):
            w = ["<s>"] + words(t) + ["</s>"]
            uni.update(w)
            bi.update(zip(w, w[1:]))
        return cls(uni, bi, lam)

    def logprob(self, prev: str, word: str) -> float:
        """log P(word | prev) = log(lam * c(prev, word) / c(prev) + (1 - lam) * (c(word) + 1) / (N + V + 1))."""
        total, vocab = sum(self.unigrams.values()), len(self.unigrams)
        p_uni = (self.unigrams[word] + 1) / (total + vocab + 1)
        p_bi = self.bigrams[(prev, word)] / self.unigrams[prev] if self.unigrams[prev] else 0.0
        return math.log(self.lam * p_bi + (1 - self.lam) * p_uni)

    def perplexity(self, texts: Sequence[str]) -> float:
        """exp of the mean negative logprob per predicted word over the texts."""
        lps = []
        for t in V.non_empty("texts", texts):
            w = ["<s>"] + words(t) + ["</s>"]
            lps += [self.logprob(a, b) for a, b in zip(w, w[1:])]
        return perplexity_from_logprobs(lps)


# ---------------------------------------------------------------- the pipeline, step by step


@dataclass(frozen=True)
class Step:
    """One cleaning step: rows kept after it, and what it removed (by planted kind) with its reasons."""

    name: str
    kept: list[dict]
    removed: Counter


def clean_corpus(rows: Sequence[dict], test_texts: Sequence[str], near_threshold: float = 0.7,
                 rules: QualityRules = QualityRules(), n: int = 8, contamination: float = 0.5) -> list[Step]:
    """Run exact dedup -> near dedup -> quality filter -> decontamination; each Step keeps the surviving rows.

    Rows are dicts with 'instruction' and 'response' (and optionally 'kind', only used to label what was removed).
    """
    def text(r: dict) -> str:
        return f"{r['instruction']} {r['response']}"

    def step(name: str, before: list[dict], drop: Iterable[int]) -> Step:
        gone = set(drop)
        removed = Counter(before[i].get("kind", "?") for i in gone)
        return Step(name, [r for i, r in enumerate(before) if i not in gone], removed)

    rows = list(V.non_empty("rows", rows))
    steps = [Step("raw", rows, Counter())]
    steps.append(step("exact dedup", rows, exact_duplicates([text(r) for r in rows])))
    cur = steps[-1].kept
    steps.append(step("near dedup", cur, drop_near_duplicates([text(r) for r in cur], near_threshold)))
    cur = steps[-1].kept
    steps.append(step("quality filter", cur, [i for i, r in enumerate(cur)
                                              if quality_problem(r["instruction"], r["response"], rules)]))
    cur = steps[-1].kept
    steps.append(step("decontaminate", cur, train_rows_overlapping([text(r) for r in cur], test_texts, n,
                                                                   contamination)))
    return steps


# ---------------------------------------------------------------- synthetic data (self-instruct)


SELF_INSTRUCT_HEADER = "Here are questions with short answers. Write one more question and its short answer."


def self_instruct_prompt(examples: Sequence[dict]) -> str:
    """A few-shot prompt listing seed (instruction, response) rows as Q:/A: lines, ending with 'Q:' to continue."""
    V.non_empty("examples", examples)
    lines = [SELF_INSTRUCT_HEADER, ""]
    for e in examples:
        lines += [f"Q: {e['instruction']}", f"A: {e['response']}", ""]
    return "\n".join(lines) + "Q:"


def parse_synthetic(continuation: str) -> dict | None:
    """{'instruction', 'response'} from a continuation 'question\\nA: answer\\n...', or None when malformed."""
    V.text("continuation", continuation, allow_empty=True)
    match = re.match(r"\s*(.+?)\s*\n\s*A:\s*(.+?)\s*(?:\n|$)", continuation)
    if match is None:
        return None
    return {"instruction": match.group(1).strip(), "response": match.group(2).strip()}


def generate_synthetic(model, tokenizer, seeds: Sequence[dict], n: int, shots: int = 3, max_new_tokens: int = 40,
                       temperature: float = 0.8, top_p: float = 0.95, seed: int = 0) -> list[str]:
    """n sampled continuations of self-instruct prompts, each built from `shots` seed rows drawn at random.

    Plain-text prompts (no chat template): the model continues a list, as in Self-Instruct (Wang et al. 2023).
    """
    import torch

    from llmlab.tokens import generate_batch

    V.positive_int("n", n)
    V.integer("shots", shots, low=1, high=len(V.non_empty("seeds", seeds)))
    V.positive_int("max_new_tokens", max_new_tokens)
    V.number("temperature", temperature, low=0.0, low_open=True)
    V.probability("top_p", top_p, open_low=True)
    rng = np.random.default_rng(seed)
    prompts = [self_instruct_prompt([seeds[j] for j in rng.choice(len(seeds), shots, replace=False)])
               for _ in range(n)]
    torch.manual_seed(seed)
    return generate_batch(model, tokenizer, prompts, max_new_tokens, batch_size=n, chat=False, do_sample=True,
                          temperature=temperature, top_p=top_p)


_SUM = re.compile(r"(\d+)\s*(?:\+|plus|and)\s*(\d+)")


def verify_sum(row: dict) -> bool | None:
    """For an addition question, whether the response's last number is the sum; None when it is not one."""
    match = _SUM.search(row["instruction"].lower())
    numbers = re.findall(r"-?\d+", row["response"])
    if match is None or not numbers:
        return None
    return int(numbers[-1]) == int(match.group(1)) + int(match.group(2))


def filter_synthetic(continuations: Sequence[str], existing: Sequence[str], near_threshold: float = 0.7,
                     rules: QualityRules = QualityRules()) -> tuple[list[dict], Counter]:
    """Keep parsed, good-quality generations that are not near duplicates of `existing` texts or of each other.

    Addition questions are also verified (`verify_sum`): a wrong sum is dropped as 'wrong_sum'.
    Returns (kept rows, Counter of why the others were dropped: 'unparsed', a quality rule, 'wrong_sum', 'near_dup').
    """
    reasons: Counter = Counter()
    parsed = []
    for c in V.non_empty("continuations", continuations):
        row = parse_synthetic(c)
        problem = "unparsed" if row is None else quality_problem(row["instruction"], row["response"], rules)
        if not problem and verify_sum(row) is False:
            problem = "wrong_sum"
        if problem:
            reasons[problem] += 1
        else:
            parsed.append(row)
    if not parsed:
        return [], reasons
    old = list(existing)
    texts = old + [f"{r['instruction']} {r['response']}" for r in parsed]
    drop = {j for i, j, _ in near_duplicates(texts, near_threshold) if j >= len(old)}
    reasons["near_dup"] += len(drop)
    return [r for i, r in enumerate(parsed) if len(old) + i not in drop], reasons
