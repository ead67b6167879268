"""Checks for chapter 01 (tokens, logits, next-token prediction) exercises."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab import bpe
from llmlab.checks import Check, call_forbidding

_LIBRARY_SOFTMAX = ["torch.log_softmax", "torch.softmax", "torch.logsumexp", "torch.special.log_softmax",
                    "torch.special.softmax", "torch.special.logsumexp", "torch.nn.functional.log_softmax",
                    "torch.nn.functional.softmax", "torch.Tensor.log_softmax", "torch.Tensor.softmax",
                    "torch.Tensor.logsumexp"]


def check_log_softmax(log_softmax) -> None:
    """Exercise 01.1: log_softmax(logits) along the last axis, stable for large gaps, without library softmax."""
    gen = torch.Generator().manual_seed(1)
    cases = {
        "small logits (5,)": torch.randn(5, generator=gen),
        "batch (3, 7)": torch.randn(3, 7, generator=gen) * 4,
        "large logits [1000, 999, 990]": torch.tensor([1000.0, 999.0, 990.0]),
        "very negative logits [-1000, -1001]": torch.tensor([-1000.0, -1001.0]),
        "a large gap inside one row [0, -200]": torch.tensor([0.0, -200.0]),
        "rows on very different scales [[1000, 999], [0, -1]]": torch.tensor([[1000.0, 999.0], [0.0, -1.0]]),
        "(batch, seq, vocab) = (2, 3, 4)": torch.randn(2, 3, 4, generator=gen) * 3,
        "float64 logits (4,)": torch.randn(4, generator=gen, dtype=torch.float64),
    }
    with Check("Exercise 01.1 log_softmax") as c:
        for case, logits in cases.items():
            expected = torch.log_softmax(logits, dim=-1)
            got = call_forbidding(c, log_softmax, logits.clone(), case=case, forbidden=_LIBRARY_SOFTMAX,
                                  hint="build it from max, exp, sum and log")
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(tuple(got.shape) == tuple(logits.shape), case,
                   f"the output must have the input's shape {tuple(logits.shape)} (one log-probability per logit, "
                   f"normalised along the last axis), got {tuple(got.shape)}")
            c.that(got.dtype == logits.dtype, case, f"keep the input's dtype {logits.dtype}, got {got.dtype}")
            bad = ~torch.isfinite(got)
            c.that(not bool(bad.any()), case,
                   f"got {int(bad.sum())} non-finite value(s) (-inf or NaN), e.g. at index "
                   f"{tuple(int(i) for i in bad.nonzero()[0]) if bad.any() else ()}: exp underflowed to 0 and its "
                   "log is -inf; subtract each row's maximum and never take the log of a probability")
            c.close(got, expected, case=case, atol=1e-5)
            c.that(bool((got <= 1e-6).all()), case, "a log-probability can never be above 0")


def check_perplexity(perplexity) -> None:
    """Exercise 01.2: perplexity(logprobs) = exp(-mean logprob per token), as a Python float."""
    cases = {
        "every token had probability 1/2": (torch.full((4,), math.log(0.5)), 2.0),
        "one certain token": (torch.tensor([0.0]), 1.0),
        "mixed [-0.1, -2.0, -0.7]": (torch.tensor([-0.1, -2.0, -0.7]), math.exp(2.8 / 3)),
        "ten tokens of probability 1/4": (torch.full((10,), math.log(0.25)), 4.0),
        "uneven [-0.01, -5.0]": (torch.tensor([-0.01, -5.0]), math.exp(5.01 / 2)),
    }
    with Check("Exercise 01.2 perplexity") as c:
        for case, (logprobs, expected) in cases.items():
            got = c.call(perplexity, logprobs.clone(), case=case)
            c.that(isinstance(got, float), case,
                   f"return a Python float (use .item() on a one-element tensor), got {type(got).__name__}")
            c.close(got, expected, case=case, rtol=1e-4)


def check_merge_pair(merge_pair) -> None:
    """Exercise 01.3: merge_pair(ids, pair, new_id) replaces each pair left to right, without overlaps."""
    cases = [
        ("classic [1, 2, 3, 1, 2]", [1, 2, 3, 1, 2], (1, 2), 99),
        ("overlapping run [7, 7, 7]", [7, 7, 7], (7, 7), 256),
        ("run of four [7, 7, 7, 7]", [7, 7, 7, 7], (7, 7), 256),
        ("pair at the very end [5, 1, 2]", [5, 1, 2], (1, 2), 300),
        ("reversed pair is not a match [2, 1, 2, 1]", [2, 1, 2, 1], (1, 2), 260),
        ("no match", [4, 5, 6], (6, 4), 270),
        ("single id", [3], (3, 3), 256),
        ("empty", [], (1, 2), 256),
    ]
    with Check("Exercise 01.3 merge_pair") as c:
        for case, ids, pair, new_id in cases:
            original = list(ids)
            got = c.call(merge_pair, ids, pair, new_id, case=case)
            c.that(isinstance(got, list), case, f"expected a list of ints, got {type(got).__name__}")
            c.that(ids == original, case, "the input list was changed; build and return a new list")
            c.equal(got, bpe.merge_pair(original, pair, new_id), case=case)


def _first_difference(got: list, expected: list) -> int:
    """Index of the first differing item (or the shorter length)."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if tuple(g) != tuple(e):
            return i
    return min(len(got), len(expected))


def _describe(merges, i: int) -> str:
    """A merge and the bytes it creates, for messages."""
    vocab = bpe.vocabulary(merges[:i + 1])
    a, b = merges[i]
    return f"({a}, {b}) -> id {256 + i} = {vocab[256 + i]!r}"


def check_train_bpe(train_bpe, text: str | None = None) -> None:
    """Exercise 01.4: train_bpe(chunks, num_merges) returns the list of learned pairs; merge i creates id 256 + i."""
    cases = [
        ("one chunk 'aaabdaaabac', 3 merges", [list(b"aaabdaaabac")], 3),
        ("a tie: 'abcd' twice, 2 merges (first-seen pair wins)", [list(b"abcd"), list(b"abcd")], 2),
        ("a tie: 'dcba' twice, 2 merges (first seen, not the smallest ids)", [list(b"dcba"), list(b"dcba")], 2),
        ("pairs never cross chunks: ['ab', 'ab', 'ba'], 1 merge", [list(b"ab"), list(b"ab"), list(b"ba")], 1),
        ("a pair repeated inside a chunk: ['abab', 'cd', 'cd'], 1 merge", [list(b"abab"), list(b"cd"), list(b"cd")],
         1),
        ("an overlapping run 'aaaa' + 'aab', 2 merges", [list(b"aaaa"), list(b"aab")], 2),
        ("UTF-8 bytes 'café café', 3 merges", bpe.pretokenize("café café"), 3),
        ("more merges than pairs: 'abc', 5 merges", [list(b"abc")], 5),
    ]
    sample = text if text is not None else (
        "Bread asks for very little: flour, water, salt and time. The yeast does most of the work, and the baker "
        "mostly decides when to interrupt it. When flour meets water, two proteins link into gluten.")
    cases.append((f"a real text ({len(sample)} characters), 25 merges", bpe.pretokenize(sample), 25))
    with Check("Exercise 01.4 train_bpe") as c:
        for case, chunks, n in cases:
            original = [list(ch) for ch in chunks]
            got = c.call(train_bpe, [list(ch) for ch in chunks], n, case=case)
            expected = bpe.train_bpe(original, n)
            c.that(isinstance(got, list), case, f"expected a list of (int, int) pairs, got {type(got).__name__}")
            c.that(all(isinstance(p, (tuple, list)) and len(p) == 2 for p in got), case,
                   f"each merge must be a pair (a, b) of token ids, got {got[:3]!r}")
            got = [tuple(int(x) for x in p) for p in got]
            if got != expected:
                i = _first_difference(got, expected)
                if i == len(got):
                    c.fail(case, f"expected {len(expected)} merges, got {len(got)}: stop only when no pair is "
                                 f"left; next expected merge {_describe(expected, i)}")
                if i == len(expected):
                    c.fail(case, f"expected {len(expected)} merges, got {len(got)} (no pair is left after merge "
                                 f"{len(expected)}; stop there)")
                vocab_ok = all(0 <= x < 256 + i for x in got[i])
                c.fail(case, f"merge #{i} (creating id {256 + i}): expected {_describe(expected, i)}, got "
                             f"{got[i]}" + ("" if vocab_ok else f" (ids must be < {256 + i} at this point)")
                       + ". Count pairs inside each chunk, take the most frequent (the first seen on ties), give it "
                         "id 256 + merge number and merge it in every chunk before counting again")
            c.equal(got, expected, case=case)


def check_next_token_loss(next_token_loss) -> None:
    """Exercise 01.5: next_token_loss(logits, labels) = mean cross-entropy of logits[:, t] against labels[:, t + 1]."""
    gen = torch.Generator().manual_seed(15)
    logits = torch.randn(2, 6, 11, generator=gen) * 2
    labels = torch.randint(0, 11, (2, 6), generator=gen)
    masked = labels.clone()
    masked[0, :4] = -100  # row 0: only 1 labelled prediction; row 1: all 5
    one = torch.randn(1, 5, 7, generator=gen)
    cases = [("batch (2, 6), vocab 11", logits, labels), ("-100 on row 0's first 4 labels", logits, masked),
             ("one sequence (1, 5), vocab 7", one, torch.randint(0, 7, (1, 5), generator=gen))]
    confident = torch.full((1, 4, 5), -10.0)
    ids = torch.tensor([[0, 1, 2, 3]])
    for t in range(3):
        confident[0, t, ids[0, t + 1]] = 10.0  # each position predicts the NEXT token
    cases.append(("logits that predict the next token perfectly", confident, ids))
    with Check("Exercise 01.5 next_token_loss") as c:
        for case, lg, lb in cases:
            expected = F.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), lb[:, 1:].reshape(-1), ignore_index=-100)
            got = c.call(next_token_loss, lg.clone(), lb.clone(), case=case)
            c.that(isinstance(got, torch.Tensor) and got.dim() == 0, case,
                   "return a 0-d tensor (a scalar you can call .backward() on), got "
                   + (f"a tensor of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor)
                      else type(got).__name__))
            no_shift = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), lb.reshape(-1), ignore_index=-100)
            c.that(not (torch.isclose(got, no_shift, atol=1e-5) and not torch.isclose(got, expected, atol=1e-5)),
                   case, "logits at position t predict the token at t + 1: compare logits[:, :-1] with "
                         "labels[:, 1:] (you compared each position with its own token)")
            c.close(got, expected, case=case, atol=1e-5)
