"""Per-token logprobs, sequence logprob and perplexity."""

from __future__ import annotations

import math

import pytest
import torch

from llmlab import evaluation


def test_token_logprobs_match_a_manual_forward(tiny):
    model, _ = tiny
    ids = torch.tensor([[5, 9, 33, 40]])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0], -1)
    expected = torch.stack([lp[0, 9], lp[1, 33], lp[2, 40]])
    assert torch.allclose(evaluation.token_logprobs(model, ids), expected, atol=1e-5)


def test_sequence_logprob_is_sum_and_context_scores_first_token(tiny):
    model, tokenizer = tiny
    pieces, lps = evaluation.text_logprobs(model, tokenizer, "abc")
    assert pieces == ["b", "c"] and lps.shape == (2,)
    assert evaluation.sequence_logprob(model, tokenizer, "abc") == pytest.approx(float(lps.sum()), abs=1e-5)
    pieces, lps = evaluation.text_logprobs(model, tokenizer, "abc", context="x")
    assert pieces == ["a", "b", "c"]


def test_perplexity_from_logprobs():
    assert evaluation.perplexity_from_logprobs([math.log(0.5)] * 3) == pytest.approx(2.0)
    assert evaluation.perplexity_from_logprobs(torch.tensor([0.0])) == 1.0


def test_real_model_prefers_fluent_text(real):
    model, tokenizer = real
    fluent = evaluation.perplexity(model, tokenizer, "The cat sat on the mat and went to sleep.")
    garbled = evaluation.perplexity(model, tokenizer, "Mat the sleep cat to on sat went the and.")
    assert fluent < garbled


def test_bad_input(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=r"input_ids must be a tensor of shape \(1, n\) with n >= 2"):
        evaluation.token_logprobs(model, torch.tensor([[3]]))
    with pytest.raises(ValueError, match="text must be a non-empty str, got ''"):
        evaluation.perplexity(model, tokenizer, "")
    with pytest.raises(ValueError, match="text must have at least 2 tokens"):
        evaluation.perplexity(model, tokenizer, "a")
    with pytest.raises(ValueError, match=r"logprobs must hold at least one value, got \[\]"):
        evaluation.perplexity_from_logprobs([])


def test_windowed_perplexity_scores_each_window_after_its_first_token(tiny):
    model, tokenizer = tiny
    text = "The cat sat on the mat and went to sleep. " * 3
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    whole = evaluation.perplexity(model, tokenizer, text)
    lps = torch.cat([evaluation.token_logprobs(model, torch.tensor([ids[s:s + 20]])) for s in range(0, len(ids), 20)
                     if len(ids[s:s + 20]) >= 2])
    assert evaluation.perplexity(model, tokenizer, text, window=20) == pytest.approx(
        evaluation.perplexity_from_logprobs(lps))
    assert whole == pytest.approx(evaluation.perplexity_from_logprobs(evaluation.token_logprobs(
        model, torch.tensor([ids]))))
    assert evaluation.perplexity(model, tokenizer, text, max_tokens=10) == pytest.approx(
        evaluation.perplexity_from_logprobs(evaluation.token_logprobs(model, torch.tensor([ids[:10]]))))


def test_cross_entropy_bits_and_the_books_bpc_bpb_example():
    lps = [math.log(0.25)] * 4
    assert evaluation.cross_entropy(lps) == pytest.approx(math.log(4))
    assert evaluation.cross_entropy(lps, base=2) == pytest.approx(2.0)
    # AI Engineering, chapter 3: 6 bits/token at 2 characters/token is 3 BPC; 3 / (7/8) ~ 3.43 BPB in 7-bit ASCII
    assert evaluation.bits_per_character(6, 2) == 3.0
    assert evaluation.bits_per_byte(3.0, 7) == pytest.approx(3.4286, abs=1e-4)
    assert evaluation.bits_per_byte(3.0) == 3.0


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError, match=r"logprobs must hold at least one value"):
        evaluation.cross_entropy([])
    with pytest.raises(ValueError, match=r"logprobs must be natural-log probabilities \(<= 0\), got max 0.5"):
        evaluation.cross_entropy([-1.0, 0.5])
    with pytest.raises(ValueError, match=r"base must be in \(1, inf\), got 1"):
        evaluation.cross_entropy([-1.0], base=1)
    with pytest.raises(ValueError, match=r"chars_per_token must be in \(0, inf\), got 0"):
        evaluation.bits_per_character(6, 0)


def test_score_text_matches_perplexity_and_counts_bytes(tiny):
    model, tokenizer = tiny
    text = "The cat sat on the mat."
    score = evaluation.score_text(model, tokenizer, text)
    pieces, lps = evaluation.text_logprobs(model, tokenizer, text)
    assert score.tokens == len(pieces) and score.characters == len(text) - 1 == score.bytes
    assert score.perplexity == pytest.approx(evaluation.perplexity(model, tokenizer, text), rel=1e-5)
    assert score.bits_per_token == pytest.approx(-float(lps.mean()) / math.log(2), rel=1e-5)
    assert score.bits_per_byte == pytest.approx(score.bits_per_token * score.tokens / score.bytes)
    accented = evaluation.score_text(model, tokenizer, "café au lait", context="x")
    assert accented.characters == 12 and accented.bytes == 13


def test_the_old_module_api_is_kept():
    from llmlab.evaluation import lm

    for name in ("perplexity", "token_logprobs", "text_logprobs", "sequence_logprob", "perplexity_from_logprobs"):
        assert getattr(evaluation, name) is getattr(lm, name)
