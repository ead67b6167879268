"""Concepts with one owner: callers elsewhere give the owner's answer (issue 24's consolidations)."""

from __future__ import annotations

import math

import pytest

from llmlab import data_engineering as D
from llmlab.evaluation.lm import perplexity_from_logprobs


def test_bigram_lm_perplexity_is_the_shared_perplexity_of_its_word_logprobs():
    lm = D.BigramLM.fit(["a b a", "b b a"])
    w = ["<s>", "a", "b", "</s>"]
    lps = [lm.logprob(x, y) for x, y in zip(w, w[1:])]
    assert lm.perplexity(["a b"]) == pytest.approx(perplexity_from_logprobs(lps))
    assert lm.perplexity(["a b"]) == pytest.approx(math.exp(-sum(lps) / 3))


def test_gather_logprobs_known_values_and_its_callers_agree():
    import torch

    from llmlab import posttraining
    from llmlab.evaluation.lm import gather_logprobs

    logits = torch.tensor([[[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]]])  # (1, 3, 2)
    ids = torch.tensor([[0, 1, 0]])
    got = gather_logprobs(logits, ids)
    assert got.shape == (1, 3)
    assert got[0].tolist() == pytest.approx([math.log(0.25), math.log(0.25), math.log(0.5)])
    # posttraining scores token t with the logits at t-1: ids[:, 1:] against logits[:, :-1]
    total = posttraining.masked_sequence_logprobs(logits, ids, torch.ones_like(ids))
    assert total.tolist() == pytest.approx([2 * math.log(0.75)])  # ids 1 then 0, each at probability 3/4
    with pytest.raises(ValueError, match=r"targets must have logits' leading shape \(1, 3\), got \(1, 2\)"):
        gather_logprobs(logits, ids[:, 1:])
