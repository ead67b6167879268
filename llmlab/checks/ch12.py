"""Checks for chapter 12 (post-training and dataset engineering) exercises."""

from __future__ import annotations

import numpy as np
import torch

from llmlab import data_engineering as de
from llmlab import posttraining as pt
from llmlab.checks import Check


def _number(c: Check, got, case: str) -> float:
    """The learner's scalar result as a float (a Python number or a one-element tensor/array)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        return float(got.item())
    if isinstance(got, np.ndarray) and got.size == 1:
        return float(got.item())
    c.that(isinstance(got, (int, float, np.number)) and not isinstance(got, bool), case,
           f"expected a number, got {type(got).__name__}")
    return float(got)


def check_jaccard(jaccard) -> None:
    """Exercise 12.1: Jaccard similarity of two collections taken as sets; two empty sets give 1.0."""
    cases = {
        "half overlap {a,b,c} vs {b,c,d}": (["a", "b", "c"], ["b", "c", "d"]),
        "repeated items ['a','a','b'] vs ['a','b','b'] (sets: identical)": (["a", "a", "b"], ["a", "b", "b"]),
        "repeats on one side ['x','x','x','y'] vs ['x','z']": (["x", "x", "x", "y"], ["x", "z"]),
        "disjoint": (["a"], ["b", "c"]),
        "one side inside the other": (["a", "b"], ["a", "b", "c", "d"]),
        "two empty collections": ([], []),
        "shingles of two real sentences": (sorted(de.char_shingles("The capital of Peru is Lima.")),
                                           sorted(de.char_shingles("The capital of Peru is Lima, indeed."))),
    }
    with Check("Exercise 12.1 jaccard") as c:
        for case, (a, b) in cases.items():
            got = _number(c, c.call(jaccard, list(a), list(b), case=case), case)
            c.close(got, de.jaccard(a, b), case=case, atol=1e-9)


def check_minhash_signature(minhash_signature) -> None:
    """Exercise 12.2: per hash p, the min over items of (((a[p]*h + b[p]) mod 2**64) mod (2**61-1)) & (2**32-1)."""
    rng = np.random.default_rng(12)
    with Check("Exercise 12.2 minhash_signature") as c:
        for n_items, n_perm in [(1, 4), (6, 8), (40, 16)]:
            hashes = rng.integers(0, 2 ** 32, n_items, dtype=np.uint64)
            a = rng.integers(1, 2 ** 30, n_perm, dtype=np.uint64)
            b = rng.integers(0, 2 ** 61 - 1, n_perm, dtype=np.uint64)
            case = f"{n_items} item hashes, {n_perm} hash functions"
            got = c.call(minhash_signature, hashes.copy(), a.copy(), b.copy(), case=case)
            c.that(isinstance(got, np.ndarray), case, f"expected a numpy array, got {type(got).__name__}")
            want = de.minhash_from_hashes(hashes, a, b)
            c.that(got.shape == want.shape, case, f"shape: expected {want.shape} (one value per hash function), "
                                                  f"got {got.shape}")
            wrong = np.flatnonzero(got.astype(np.uint64) != want)
            c.that(wrong.size == 0, case, f"{wrong.size} of {want.size} values differ; first at {wrong[:1].tolist()}"
                                          f": expected {want[wrong[:1]].tolist()}, got {got[wrong[:1]].tolist()}")
        a, b = de.minhash_permutations(64)
        x = np.array([de.sha1_hash32(s.encode()) for s in de.char_shingles("what is the capital of peru")],
                     dtype=np.uint64)
        y = np.array([de.sha1_hash32(s.encode()) for s in de.char_shingles("what is the capital of chile")],
                     dtype=np.uint64)
        case = "datasketch's 64 permutations on two sentences"
        sx, sy = c.call(minhash_signature, x, a, b, case=case), c.call(minhash_signature, y, a, b, case=case)
        for name, got, items in (("first", sx, x), ("second", sy, y)):
            want = de.minhash_from_hashes(items, a, b)
            c.that(isinstance(got, np.ndarray) and got.shape == want.shape, case + f", {name} sentence",
                   f"expected a numpy array of shape {want.shape}, got {type(got).__name__} "
                   f"{tuple(getattr(got, 'shape', ()))}")
            wrong = np.flatnonzero(np.asarray(got).astype(np.uint64) != want)
            c.that(wrong.size == 0, case + f", {name} sentence",
                   f"{wrong.size} of {want.size} values differ from datasketch's; first at {wrong[:1].tolist()}: "
                   f"expected {want[wrong[:1]].tolist()}, got {np.asarray(got)[wrong[:1]].tolist()}. These a go up to "
                   f"2**61, so a·h + b overflows 64 bits: compute it in numpy uint64, which wraps modulo 2**64 as "
                   f"datasketch does (Python ints do not wrap), then take mod 2**61-1, then & 2**32-1")


def check_overlap_share(overlap_share) -> None:
    """Exercise 12.3: share of the test text's word n-grams found in the training texts (normalized words)."""
    train = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "What is the capital of Peru? The capital of Peru is Lima."]
    cases = [
        ("only the LAST 3-gram of the test text is in training", "purple cats sing lazy dog near", train, 3),
        ("only the FIRST 3-gram is in training", "quick brown fox sings purple songs", train, 3),
        ("a test text with a repeated n-gram", "lima lima lima lima the capital of peru", train, 3),
        ("a copy of a training text with different case and punctuation",
         "what is THE capital of peru the capital of peru is lima", train, 8),
        ("unrelated text", "Completely different words are here today, my friend.", train, 4),
        ("n-grams must not cross from one training text to the next", "river bank what is the", train, 3),
        ("a test text shorter than n is one n-gram (the whole text)", "the capital of peru", train, 6),
        ("n = 1", "fox and cat and dog", train, 1),
        ("a short test text that IS a short training text (both one whole-text n-gram)", "Lima is big!",
         train + ["lima is BIG"], 4),
    ]
    with Check("Exercise 12.3 overlap_share") as c:
        for case, text, tr, n in cases:
            got = _number(c, c.call(overlap_share, text, list(tr), n, case=case), case)
            reference = set().union(*(de.word_ngrams(t, n) for t in tr))
            c.close(got, de.ngram_overlap(text, reference, n), case=f"{case} (n={n})", atol=1e-9)


def check_quality_problem(quality_problem) -> None:
    """Exercise 12.4: the first quality rule a row breaks, in the order too_short, symbols, not_english, repetitive."""
    rows = [
        ("What is 3 plus 4?", "3 plus 4 is 7."),
        ("What is 3 plus 4?", "It is 7."),
        ("What is 3 plus 4?", "Seven, obviously."),
        ("#$%^&*{}[]", "@@ ## ab cd ef 12 %% ^^ && ** ++"),
        ("Quelle est la capitale de la France ?", "La capitale de la France est Paris."),
        ("Quelle est la capitale ?", "Paris Paris Paris Paris Paris Paris."),
        ("What is 3 plus 4?", "3 plus 4 is 7. 3 plus 4 is 7. 3 plus 4 is 7."),
        ("Repeat after me: the cat sat on the mat, the cat sat on the mat.", "The cat sat on the mat."),
        ("What is the capital of Peru?", "The capital of Peru is Lima, and Lima is big."),
        ("Name it.", "Rome"),
        ("What is the capital of Peru?", "Lima, Peru: population 10 million."),
        # rows exactly at each threshold, and rows where a near-miss reading of a rule gives another answer
        ("Where is it?", "Lima -- Peru", "de.words finds 2 words; .split() finds 3"),
        ("Which numbers?", "It's 3-4", "de.words finds 3 words; .split() finds 2"),
        ("Is 2+2=4?", "Yes, it is so!!", "alnum share exactly 0.7: not below 0.7"),
        ("Translate gato and perro", "It means cat, dog.", "English share exactly 0.25: not below 0.25"),
        ("What did the fox do?", "The fox ran, the fox ran far",
         "1 of 5 word 3-grams repeats: 0.2 is not more than 0.2 (2-grams: 2 of 6)"),
        ("What did the fox do, and what did it see?", "big red fox ran big red fox sat big red fox",
         "2 of 9 word 3-grams repeat (no 4-gram does)"),
        ("What did the fox do?", "red fox ran, red fox sat, red fox", "2-grams repeat, 3-grams do not"),
        ("What did you see?", "Go to Lima. Go to Lima! Go to Peru",
         "3-grams of de.words repeat; 3-grams of .split() keep the punctuation and do not"),
        ("Write the formula for the area of a circle please", "A = pi * r^2",
         "the response alone is 5/8 alnum, under 0.7; instruction + response is not"),
        ("{{#$%^&*}} ???", "The answer is four.", "the instruction's symbols count too"),
    ]
    with Check("Exercise 12.4 quality_problem") as c:
        for instruction, response, *why in rows:
            case = f"instruction {instruction!r}, response {response!r}" + (f" ({why[0]})" if why else "")
            got = c.call(quality_problem, instruction, response, case=case)
            c.equal(got, de.quality_problem(instruction, response), case=case)


def _logits_batch(seed: int, b: int = 3, t: int = 7, v: int = 11):
    """Random logits (B, T, V), ids (B, T) and a completion mask with prompts of different lengths."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, v, generator=gen) * 2
    ids = torch.randint(0, v, (b, t), generator=gen)
    mask = torch.zeros(b, t, dtype=torch.long)
    for row, (start, end) in enumerate([(3, 7), (5, 7), (2, 5)][:b]):
        mask[row, start:end] = 1
    return logits, ids, mask


def check_sequence_logprob(sequence_logprob) -> None:
    """Exercise 12.5: (B,) sum of log p(token | before) over the response (completion_mask == 1) tokens only."""
    with Check("Exercise 12.5 sequence_logprob") as c:
        for seed in (0, 1):
            logits, ids, mask = _logits_batch(seed)
            case = f"logits (3, 7, 11), prompts of 3, 5 and 2 tokens, padding after (seed {seed})"
            got = c.call(sequence_logprob, logits.clone(), ids.clone(), mask.clone(), case=case)
            c.close(got, pt.masked_sequence_logprobs(logits, ids, mask), case=case, atol=1e-4)
        logits, ids, mask = _logits_batch(2, b=1, t=4, v=5)
        mask[:] = torch.tensor([[0, 1, 1, 1]])
        case = "one row (1, 4, 5), a one-token prompt"
        got = c.call(sequence_logprob, logits.clone(), ids.clone(), mask.clone(), case=case)
        c.close(got, pt.masked_sequence_logprobs(logits, ids, mask), case=case, atol=1e-4)


def check_dpo_loss(dpo_loss) -> None:
    """Exercise 12.6: mean of -log σ(β[(πc - refc) - (πr - refr)]), stable for huge margins."""
    cases = {
        "policy = reference (loss log 2)": ([-10.0, -20.0], [-12.0, -15.0], [-10.0, -20.0], [-12.0, -15.0], 0.1),
        "policy moved towards chosen, beta 0.5": ([-9.0, -11.0], [-14.0, -13.0], [-10.0, -12.0], [-13.0, -12.5], 0.5),
        "reference prefers the rejected one, beta 0.1": ([-5.0, -7.0], [-6.0, -4.0], [-9.0, -3.0], [-2.0, -8.0], 0.1),
        "beta 2 on small ratios": ([-1.0], [-1.5], [-1.2], [-1.1], 2.0),
        "a huge wrong-way margin (needs a stable log-sigmoid)": ([-3000.0], [-10.0], [-10.0], [-10.0], 1.0),
        "a huge right-way margin": ([-10.0], [-3000.0], [-10.0], [-10.0], 1.0),
    }
    with Check("Exercise 12.6 dpo_loss") as c:
        for case, (pc, pr, rc, rr, beta) in cases.items():
            tensors = [torch.tensor(x) for x in (pc, pr, rc, rr)]
            got = c.call(dpo_loss, *[t.clone() for t in tensors], beta, case=case)
            c.that(isinstance(got, torch.Tensor) and got.numel() == 1, case,
                   f"expected a one-element tensor (the mean loss), got {type(got).__name__} "
                   f"{tuple(getattr(got, 'shape', ()))}")
            c.close(got.reshape(()), pt.dpo_loss(*tensors, beta=beta).loss, case=case, atol=1e-5)


def check_bradley_terry_loss(bradley_terry_loss) -> None:
    """Exercise 12.7: mean of -log σ(r_chosen - r_rejected), stable for huge differences."""
    cases = {
        "equal scores (loss log 2)": ([0.5, -1.0], [0.5, -1.0]),
        "chosen higher": ([2.0, 1.0, 0.0], [0.0, 0.5, -1.0]),
        "mixed": ([1.0, -2.0, 0.3, 0.0], [0.0, 1.0, 0.2, 3.0]),
        "a huge wrong-way difference": ([-500.0], [500.0]),
        "a huge right-way difference": ([500.0, 1.0], [-500.0, 0.0]),
    }
    with Check("Exercise 12.7 bradley_terry_loss") as c:
        for case, (ch, rj) in cases.items():
            a, b = torch.tensor(ch), torch.tensor(rj)
            got = c.call(bradley_terry_loss, a.clone(), b.clone(), case=case)
            c.that(isinstance(got, torch.Tensor) and got.numel() == 1, case,
                   f"expected a one-element tensor (the mean loss), got {type(got).__name__}")
            c.close(got.reshape(()), pt.bradley_terry_loss(a, b), case=case, atol=1e-5)
