"""Logits processors agree with transformers' warpers; decoding loops reproduce model.generate."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    MinPLogitsWarper,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from llmlab import sampling, tokens


@pytest.fixture
def logits():
    return torch.randn(4, 50, generator=torch.Generator().manual_seed(0)) * 3


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert torch.equal(torch.isinf(a), torch.isinf(b))
    assert torch.allclose(a[torch.isfinite(a)], b[torch.isfinite(b)], atol=1e-6)


@pytest.mark.parametrize("t", [0.3, 0.7, 1.0, 2.5])
def test_temperature_matches_transformers(logits, t):
    same(sampling.apply_temperature(logits, t), TemperatureLogitsWarper(t)(None, logits.clone()))


@pytest.mark.parametrize("k", [1, 3, 10, 49])
def test_top_k_matches_transformers(logits, k):
    same(sampling.top_k_filter(logits, k), TopKLogitsWarper(k)(None, logits.clone()))


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9, 0.99])
def test_top_p_matches_transformers(logits, p):
    same(sampling.top_p_filter(logits, p), TopPLogitsWarper(p)(None, logits.clone()))


@pytest.mark.parametrize("m", [0.01, 0.1, 0.5, 1.0])
def test_min_p_matches_transformers(logits, m):
    same(sampling.min_p_filter(logits, m), MinPLogitsWarper(m)(None, logits.clone()))


@pytest.mark.parametrize("penalty", [0.5, 1.3, 2.0])
def test_repetition_penalty_matches_transformers(logits, penalty):
    ids = torch.randint(0, 50, (4, 7), generator=torch.Generator().manual_seed(1))
    same(sampling.repetition_penalty(logits, ids, penalty),
         RepetitionPenaltyLogitsProcessor(penalty)(ids, logits.clone()))


def test_temperature_zero_is_greedy_and_book_example():
    probs = sampling.softmax_with_temperature(torch.tensor([1.0, 2.0]), 0)
    assert probs.tolist() == [0.0, 1.0]
    book = torch.tensor([1.0, 2.0])
    assert sampling.softmax_with_temperature(book, 1).tolist() == pytest.approx([0.27, 0.73], abs=5e-3)
    assert sampling.softmax_with_temperature(book, 0.5).tolist() == pytest.approx([0.12, 0.88], abs=5e-3)


def test_filters_work_on_any_batch_shape_and_keep_ties():
    x = torch.tensor([[[1.0, 3.0, 3.0, 0.0]]])
    assert torch.isfinite(sampling.top_k_filter(x, 1)).tolist() == [[[False, True, True, False]]]
    assert torch.equal(sampling.top_k_filter(x, 0), x)
    assert torch.equal(sampling.top_p_filter(x, 1.0), x)
    assert torch.equal(sampling.min_p_filter(x, 0.0), x)


def test_sampling_distribution_marks_kept_tokens():
    probs, kept = sampling.sampling_distribution(torch.tensor([0.0, 1.0, 2.0, 3.0]), temperature=1.0, top_k=2)
    assert kept.tolist() == [False, False, True, True]
    assert probs.sum().item() == pytest.approx(1.0)
    assert probs[~kept].sum().item() == 0.0


@pytest.mark.parametrize("call,message", [
    (lambda x: sampling.apply_temperature(x, -0.1), r"temperature must be in \[0, inf\) .*got -0.1"),
    (lambda x: sampling.top_p_filter(x, 1.5), r"top_p must be in \(0, 1\], got 1.5"),
    (lambda x: sampling.top_p_filter(x, 0), r"top_p must be in \(0, 1\], got 0"),
    (lambda x: sampling.top_k_filter(x, -1), r"top_k must be an int in \[0, inf\) .*got -1"),
    (lambda x: sampling.min_p_filter(x, 1.2), r"min_p must be in \[0, 1\], got 1.2"),
    (lambda x: sampling.repetition_penalty(x, torch.zeros(4, 1, dtype=torch.long), 0),
     r"penalty must be in \(0, inf\)"),
    (lambda x: sampling.apply_temperature(x.long(), 1.0), r"logits must be a floating tensor"),
])
def test_bad_arguments_name_parameter_range_and_value(logits, call, message):
    with pytest.raises(ValueError, match=message):
        call(logits)


@pytest.mark.parametrize("bad", [2.5, True, "3", None])
def test_top_k_of_a_wrong_type_is_a_type_error(logits, bad):
    with pytest.raises(TypeError, match="top_k must be an int, got"):
        sampling.top_k_filter(logits, bad)
    with pytest.raises(TypeError, match="top_k must be an int, got"):
        sampling.SamplingSettings(top_k=bad)


def test_bad_types_and_loop_arguments(tiny):
    model, _ = tiny
    with pytest.raises(TypeError, match="temperature must be a number, got str"):
        sampling.apply_temperature(torch.zeros(3), "hot")
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match=r"num_beams must be an int in \[1, inf\), got 0"):
        sampling.beam_search(model, ids, 0, 3)
    with pytest.raises(ValueError, match=r"max_new_tokens must be an int in \[1, inf\), got 0"):
        sampling.greedy(model, ids, 0)
    with pytest.raises(ValueError, match=r"input_ids must be an integer tensor of shape \(1, seq\)"):
        sampling.greedy(model, torch.tensor([5, 6]), 3)


NAN, INF = float("nan"), float("inf")
ENTRY_POINTS = {
    "apply_temperature": lambda x: sampling.apply_temperature(x, 0.7),
    "greedy temperature": lambda x: sampling.apply_temperature(x, 0),
    "softmax_with_temperature": lambda x: sampling.softmax_with_temperature(x, 1.0),
    "top_k_filter": lambda x: sampling.top_k_filter(x, 2),
    "top_p_filter": lambda x: sampling.top_p_filter(x, 0.9),
    "min_p_filter": lambda x: sampling.min_p_filter(x, 0.1),
    "repetition_penalty": lambda x: sampling.repetition_penalty(x, torch.zeros(*x.shape[:-1], 1, dtype=torch.long),
                                                                1.3),
    "process_logits": lambda x: sampling.process_logits(x, sampling.SamplingSettings(0.7, 3, 0.9, 0.05)),
    "sampling_distribution": lambda x: sampling.sampling_distribution(x[0], 0.7, 3, 0.9),
    "probabilities_vs_temperature": lambda x: sampling.probabilities_vs_temperature(x[0], [0.5, 1.0]),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("bad,found", [(NAN, "1 NaN"), (INF, r"1 \+inf")])
def test_entry_points_reject_nan_and_positive_inf(entry, bad, found):
    x = torch.tensor([[0.0, 1.0, bad, 2.0]])
    with pytest.raises(ValueError, match=f"logits must hold only finite values or -inf \\(a mask\\), got {found}"):
        ENTRY_POINTS[entry](x)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_entry_points_accept_minus_inf_masks_but_not_an_all_masked_row(entry):
    masked = torch.tensor([[0.0, -INF, 1.0, 2.0]])
    out = ENTRY_POINTS[entry](masked)
    out = out[0] if isinstance(out, tuple) else out
    assert not torch.isnan(out).any()
    with pytest.raises(ValueError, match="logits must keep at least one finite value in each row"):
        ENTRY_POINTS[entry](torch.full((1, 4), -INF))


def test_chained_masks_pass_through_process_logits():
    # top-k's -inf output fed to the next call is a mask, not an error
    once = sampling.top_k_filter(torch.tensor([[3.0, 1.0, 2.0, 0.0]]), 2)
    twice = sampling.process_logits(once, sampling.SamplingSettings(temperature=0.5, top_p=0.8))  # p(3) = 0.88
    assert torch.isfinite(twice).tolist() == [[True, False, False, False]]


@pytest.mark.parametrize("bad", [NAN, INF])
@pytest.mark.parametrize("loop", [
    lambda m, tok, ids: sampling.greedy(m, ids, 3),
    lambda m, tok, ids: sampling.sample(m, ids, 3, temperature=0.8, top_k=20, num_samples=2),
    lambda m, tok, ids: sampling.decode(m, ids, 3, sampling.SamplingSettings(0.0, repetition_penalty=1.3)),
    lambda m, tok, ids: list(sampling.stream(m, tok, ids, 3)),
    lambda m, tok, ids: list(sampling.stream(m, tok, ids, 3, sampling.SamplingSettings(temperature=1.0))),
], ids=["greedy", "sample", "penalty", "stream", "stream-sample"])
def test_decoding_loops_reject_a_model_that_returns_non_finite_logits(tiny, bad, loop):
    model, tokenizer = tiny
    ids = torch.tensor([[5, 6, 7]])
    handle = model.lm_head.register_forward_hook(lambda mod, args, out: out.masked_fill(out > out.mean(), bad))
    try:
        with pytest.raises(ValueError, match="logits must hold only finite values or -inf"):
            loop(model, tokenizer, ids)
    finally:
        handle.remove()
    assert sampling.greedy(model, ids, 3).token_ids  # the hook is gone: decoding works again


def _generate(model, ids, **kw):
    out = model.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=0, **kw)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("prompt", [[5, 6, 7], [100, 3, 40, 41, 42]])
def test_greedy_matches_generate_on_tiny_model(tiny, prompt):
    model, _ = tiny
    ids = torch.tensor([prompt])
    assert sampling.greedy(model, ids, 12).token_ids == _generate(model, ids, max_new_tokens=12, do_sample=False)


@pytest.mark.parametrize("num_beams,length_penalty,eos", [(2, 1.0, 2), (3, 0.0, 2), (4, 2.0, 2), (3, 1.0, 120),
                                                         (5, 1.0, 77)])
def test_beam_search_matches_generate_on_tiny_model(tiny, num_beams, length_penalty, eos):
    model, _ = tiny
    ids = torch.tensor([[5, 6, 7, 120, 77]])
    want = _generate(model, ids, max_new_tokens=8, num_beams=num_beams, do_sample=False,
                     length_penalty=length_penalty, eos_token_id=eos)
    got = sampling.beam_search(model, ids, num_beams, 8, length_penalty=length_penalty, eos_token_id=eos)
    assert got[0].token_ids == want
    assert [b.score for b in got] == sorted([b.score for b in got], reverse=True)


def test_greedy_and_beam_search_reproduce_generate_on_real_model(real):
    model, tokenizer = real
    ids = tokens.encode_prompt(tokenizer, "Name a colour.")
    assert sampling.greedy(model, ids, 6).token_ids == _generate(model, ids, max_new_tokens=6, do_sample=False)
    want = _generate(model, ids, max_new_tokens=6, num_beams=3, do_sample=False)
    assert sampling.beam_search(model, ids, 3, 6)[0].token_ids == want


def test_sampling_is_seeded_and_records_model_logprobs(tiny):
    model, _ = tiny
    ids = torch.tensor([[5, 6, 7]])
    a = sampling.sample(model, ids, 6, temperature=1.0, num_samples=3, seed=1, eos_token_id=[])
    b = sampling.sample(model, ids, 6, temperature=1.0, num_samples=3, seed=1, eos_token_id=[])
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    assert len({tuple(g.token_ids) for g in a}) > 1
    with torch.no_grad():
        full = torch.cat([ids, torch.tensor([a[0].token_ids])], dim=1)
        lp = torch.log_softmax(model(full).logits[0, 2:-1].float(), -1)
    expected = lp[torch.arange(6), torch.tensor(a[0].token_ids)]
    assert torch.allclose(torch.tensor(a[0].logprobs), expected, atol=1e-4)


def test_top_k_one_sampling_equals_greedy(tiny):
    model, _ = tiny
    ids = torch.tensor([[9, 10]])
    g = sampling.greedy(model, ids, 8, eos_token_id=[])
    s = sampling.sample(model, ids, 8, top_k=1, seed=3, eos_token_id=[])[0]
    assert s.token_ids == g.token_ids


def test_stream_yields_greedy_tokens(tiny):
    model, tokenizer = tiny
    ids = torch.tensor([[5, 6, 7]])
    streamed = list(sampling.stream(model, tokenizer, ids, 5, eos_token_id=[]))
    assert [s.token_id for s in streamed] == sampling.greedy(model, ids, 5, eos_token_id=[]).token_ids
    text = tokenizer.decode([s.token_id for s in streamed], skip_special_tokens=True)
    assert "".join(s.text for s in streamed) == text.rstrip("\ufffd")


def test_best_of_n_ranks_by_mean_logprob(tiny):
    model, _ = tiny
    ranked = sampling.best_of_n(model, torch.tensor([[5, 6]]), 4, 5, seed=2)
    means = [g.mean_logprob for g in ranked]
    assert means == sorted(means, reverse=True)
    assert sampling.select_best([[-1.0, -1.0], [-0.5], [-3.0, 0.0]]) == 1
    assert sampling.select_best([[-1.0], [-1.0]]) == 0
    with pytest.raises(ValueError, match=r"logprobs\[1\] must hold at least one"):
        sampling.select_best([[-1.0], []])


def test_majority_vote_and_self_consistency(tiny):
    assert sampling.majority_vote(["4", "5", None, "5", "4"]) == ("4", 2)
    assert sampling.majority_vote([None, None]) == (None, 0)
    model, tokenizer = tiny
    vote = sampling.self_consistency(model, tokenizer, torch.tensor([[5, 6]]), 5, lambda s: s[:1] or None,
                                     max_new_tokens=2)
    assert len(vote.answers) == 5 and vote.votes == vote.answers.count(vote.answer)


def test_distinct_n():
    assert sampling.distinct_n([1, 2, 3, 4], 2) == 1.0
    assert sampling.distinct_n([1, 1, 1, 1, 1], 2) == 0.25
    with pytest.raises(ValueError, match="token_ids must hold at least n=3 tokens, got 2"):
        sampling.distinct_n([1, 2], 3)


def test_first_word_and_accuracy_vs_n():
    assert sampling.first_word(" Paris\nQ: next") == "paris"
    assert sampling.first_word(" 10 apples") == "10"
    assert sampling.first_word(" ...") is None
    answers = [["a", "b", "b"], ["x", "x", "y"]]
    assert sampling.accuracy_vs_n(answers, ["b", "x"], [1, 3]) == [0.5, 1.0]
    logprobs = [[-3.0, -0.1, -2.0], [-1.0, -0.5, -0.2]]
    assert sampling.accuracy_vs_n(answers, ["b", "x"], [1, 3], mean_logprobs=logprobs) == [0.5, 0.5]
    with pytest.raises(ValueError, match="n must be at most the 3 samples of question 0, got 4"):
        sampling.accuracy_vs_n(answers, ["b", "x"], [4])


def test_probabilities_vs_temperature_book_example():
    probs = sampling.probabilities_vs_temperature(torch.tensor([1.0, 2.0]), [1.0, 0.5])
    assert probs[:, 1].tolist() == pytest.approx([0.731, 0.881], abs=1e-3)
