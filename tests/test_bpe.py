"""Byte-level BPE from scratch: pre-tokenization, pair counts, merges, training, encode/decode round trips."""

import pytest

from llmlab import bpe


def test_pretokenize_keeps_leading_spaces_and_bytes():
    assert bpe.pretokenize("Hi there, café!") == [list(b"Hi"), list(b" there"), list(b","), list(" café".encode()),
                                                  list(b"!")]
    with pytest.raises(TypeError, match="text must be a str"):
        bpe.pretokenize(b"bytes")


def test_pair_counts_count_overlaps_inside_chunks_only():
    counts = bpe.pair_counts([[1, 1, 1], [2, 1], [1]])
    assert counts == {(1, 1): 2, (2, 1): 1}
    assert list(counts) == [(1, 1), (2, 1)]  # order of first appearance


@pytest.mark.parametrize("ids,pair,expected", [
    ([1, 2, 3, 1, 2], (1, 2), [9, 3, 9]), ([7, 7, 7], (7, 7), [9, 7]), ([7, 7, 7, 7], (7, 7), [9, 9]),
    ([2, 1], (1, 2), [2, 1]), ([], (1, 2), []),
])
def test_merge_pair_left_to_right(ids, pair, expected):
    assert bpe.merge_pair(ids, pair, 9) == expected


def test_train_bpe_wikipedia_example_and_ties():
    assert bpe.train_bpe([list(b"aaabdaaabac")], 3) == [(97, 97), (256, 97), (257, 98)]
    assert bpe.train_bpe([list(b"abcd"), list(b"abcd")], 1) == [(97, 98)]  # tie: first seen wins
    assert bpe.train_bpe([list(b"ab")], 5) == [(97, 98)]  # stops when no pair is left
    with pytest.raises(ValueError, match=r"num_merges must be an int in \[0, inf\), got -1"):
        bpe.train_bpe([[1, 2]], -1)
    with pytest.raises(TypeError, match="num_merges must be an int, got float 2.0"):
        bpe.train_bpe([[1, 2]], 2.0)


def test_encode_decode_round_trip_and_compression():
    text = "the cat and the hat and the bat " * 5 + "naïve"
    merges = bpe.train_bpe(bpe.pretokenize(text), 20)
    ids = bpe.encode(text, merges)
    assert bpe.decode(ids, merges) == text
    assert len(ids) < len(text.encode()) / 2
    assert bpe.vocabulary(merges)[256] == bytes(merges[0][0:1]) + bytes(merges[0][1:2])
    with pytest.raises(ValueError, match="ids must be in"):
        bpe.decode([999], merges)
