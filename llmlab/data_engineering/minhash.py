"""Near duplicates: character shingles, Jaccard similarity, MinHash signatures and LSH banding.

MinHash here reproduces `datasketch.MinHash(num_perm, seed, scheme="legacy")` bit for bit (same SHA-1 32-bit
hash, same random permutations, same uint64 arithmetic), and `lsh_candidates` finds the same candidate pairs as
`datasketch.MinHashLSH(params=(bands, rows))`; tests check both."""

from __future__ import annotations

import hashlib
import struct
from collections import defaultdict
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

from llmlab import validate as V
from llmlab.data_engineering.text import normalize

_MERSENNE = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)


def char_shingles(text: str, k: int = 5) -> set[str]:
    """The set of k-character substrings of the normalized text (the whole text if it is shorter than k).

    >>> sorted(char_shingles("abcdef", k=4))
    ['abcd', 'bcde', 'cdef']
    """
    V.positive_int("k", k)
    t = normalize(text)
    if len(t) <= k:
        return {t} if t else set()
    return {t[i:i + k] for i in range(len(t) - k + 1)}


def jaccard(a: Iterable, b: Iterable) -> float:
    """|A ∩ B| / |A ∪ B| of the two collections taken as sets (two empty sets are identical: 1.0).

    >>> jaccard({1, 2, 3}, {2, 3, 4})
    0.5
    """
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
