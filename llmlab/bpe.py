"""Byte-level BPE from scratch (GPT-2 style): pre-tokenize, count pairs, merge, train, encode, decode.

Merge i creates token id 256 + i from the most frequent adjacent pair; ties go to the pair seen first.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import regex

from llmlab import validate as V

# GPT-2's pre-tokenizer: words with their leading space, numbers, punctuation runs, whitespace.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT = regex.compile(GPT2_PATTERN)

Merge = tuple[int, int]


def pretokenize(text: str) -> list[list[int]]:
    """Split text into GPT-2 pre-tokens, each a list of its UTF-8 byte values (0..255).

    >>> pretokenize("hi there")
    [[104, 105], [32, 116, 104, 101, 114, 101]]
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [list(piece.encode("utf-8")) for piece in _SPLIT.findall(text)]


def pair_counts(chunks: Sequence[Sequence[int]]) -> Counter:
    """Count every adjacent pair inside each chunk (never across chunks), in order of first appearance.

    >>> pair_counts([[1, 2, 1, 2], [1, 2]])
    Counter({(1, 2): 3, (2, 1): 1})
    """
    counts: Counter = Counter()
    for ids in chunks:
        for pair in zip(ids, ids[1:]):
            counts[pair] += 1
    return counts


def merge_pair(ids: Sequence[int], pair: Merge, new_id: int) -> list[int]:
    """Replace each occurrence of pair in ids by new_id, scanning left to right without overlaps.

    >>> merge_pair([1, 2, 3, 1, 2], (1, 2), 256)
    [256, 3, 256]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _check_merges(num_merges: int) -> None:
    """num_merges must be a non-negative int."""
    V.integer("num_merges", num_merges, low=0)


def train_bpe(chunks: Sequence[Sequence[int]], num_merges: int) -> list[Merge]:
    """Learn up to num_merges merges from pre-tokenized byte chunks (stops early when no pair is left).

    >>> train_bpe([list(b"aaabdaaabac")], 3)
    [(97, 97), (256, 97), (257, 98)]
    """
    _check_merges(num_merges)
    work = [list(c) for c in chunks]
    merges: list[Merge] = []
    for i in range(num_merges):
        counts = pair_counts(work)
        if not counts:
            break
        best = max(counts, key=counts.__getitem__)  # max keeps the first of equal counts: the pair seen first
        merges.append(best)
        work = [merge_pair(ids, best, 256 + i) for ids in work]
    return merges


def encode(text: str, merges: Sequence[Merge]) -> list[int]:
    """Token ids of text: pre-tokenize, then apply the merges in the order they were learned.

    >>> encode("aaab", [(97, 97)])
    [256, 97, 98]
    """
    out: list[int] = []
    for ids in pretokenize(text):
        for i, pair in enumerate(merges):
            if len(ids) < 2:
                break
            ids = merge_pair(ids, tuple(pair), 256 + i)
        out.extend(ids)
    return out


def vocabulary(merges: Sequence[Merge]) -> list[bytes]:
    """The bytes each token id stands for: 256 single bytes, then one entry per merge."""
    vocab = [bytes([b]) for b in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab


def decode(ids: Sequence[int], merges: Sequence[Merge]) -> str:
    """Text of token ids (invalid UTF-8 shown as U+FFFD).

    >>> decode([256, 97, 98], [(97, 97)])
    'aaab'
    """
    vocab = vocabulary(merges)
    if any(not 0 <= i < len(vocab) for i in ids):
        raise ValueError(f"ids must be in [0, {len(vocab)}), got {[i for i in ids if not 0 <= i < len(vocab)][:5]}")
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
