"""Speculative decoding: the maths, losslessness (greedy identity, sampled distribution), drafters, bad input."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from llmlab import attention, kv_cache
from llmlab import speculative as S
from llmlab.kit import fixtures
from llmlab.sampling import SamplingSettings
from llmlab.speculative import rejection as V

# ---------------------------------------------------------------- the maths


def test_acceptance_probability_is_min_one_p_over_q():
    p = torch.tensor([0.5, 0.3, 0.2, 0.0])
    q = torch.tensor([0.25, 0.6, 0.0, 0.15])
    assert torch.allclose(S.acceptance_probability(p, q), torch.tensor([1.0, 0.5, 1.0, 0.0]))


def test_residual_is_normalised_positive_part_and_falls_back_to_p():
    p = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    q = torch.tensor([[0.2, 0.6, 0.2], [0.2, 0.3, 0.5]])
    r = S.residual_distribution(p, q)
    assert torch.allclose(r[0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(r[1], p[1])


def test_acceptance_rate_is_one_minus_total_variation():
    p, q = torch.tensor([0.5, 0.5, 0.0]), torch.tensor([0.0, 0.5, 0.5])
    assert S.acceptance_rate(p, q).item() == pytest.approx(0.5)


def test_verify_greedy_counts_the_matching_prefix_and_adds_the_target_token():
    assert S.verify_greedy([5, 6, 7, 8], [5, 6, 9]) == (2, 7)
    assert S.verify_greedy([5, 6, 7, 8], [5, 6, 7]) == (3, 8)
    assert S.verify_greedy([4, 6], [5]) == (0, 4)
    with pytest.raises(ValueError, match="target_tokens must hold"):
        S.verify_greedy([1, 2], [1, 2])


def test_expected_tokens_and_speedup_model():
    assert S.expected_tokens_per_step(0.0, 4) == 1.0
    assert S.expected_tokens_per_step(1.0, 4) == 5.0
    assert S.expected_tokens_per_step(0.8, 4) == pytest.approx((1 - 0.8 ** 5) / 0.2)
    assert S.predicted_speedup(0.8, 4, 0.0) == pytest.approx(S.expected_tokens_per_step(0.8, 4))
    assert S.predicted_speedup(0.8, 4, 0.05, verify_cost=1.5) == pytest.approx(3.3616 / 1.7)
    assert S.best_gamma(0.9, 0.01) > S.best_gamma(0.5, 0.2)
    with pytest.raises(ValueError, match="alpha must be in"):
        S.expected_tokens_per_step(1.5, 4)
    with pytest.raises(ValueError, match="gamma must be an int in"):
        S.predicted_speedup(0.5, 0, 0.1)


def test_alpha_counts_only_the_draft_tokens_the_target_tried():
    r = S.SpeculativeResult(steps=[S.Step([1, 2, 3, 4], 1, 9), S.Step([5, 6, 7, 8], 4, 9), S.Step([], 0, 9)])
    assert r.accepted == 5 and r.proposed == 8 and r.rejections == 1
    assert r.alpha == pytest.approx(5 / 6)  # the 3 drafts after the first rejection were never tried
    assert r.accepted_share == pytest.approx(5 / 8)
    assert S.SpeculativeResult().alpha == 0.0


def test_alpha_by_position_counts_a_position_as_tried_only_when_all_before_it_passed():
    r = S.SpeculativeResult(steps=[S.Step([1, 2, 3, 4], 1, 9), S.Step([5, 6, 7, 8], 4, 9), S.Step([], 0, 9)])
    assert r.position_counts(5) == ([2, 1, 1, 1, 0], [2, 2, 1, 1, 0])
    assert r.alpha_by_position(4) == [1.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="max_position"):
        r.position_counts(0)


def test_break_even_alpha_is_where_the_model_predicts_one():
    a = S.break_even_alpha(4, 0.075, 1.75)
    assert 0 < a < 1 and S.predicted_speedup(a, 4, 0.075, 1.75) == pytest.approx(1.0, abs=1e-6)
    assert S.break_even_alpha(4, 0.075, 1.05) < a  # a cheaper verify pass lowers the bar
    assert S.break_even_alpha(1, 0.0, 0.9) == 0.0
    assert S.break_even_alpha(2, 0.5, 2.5) is None  # even α = 1 gives 3 tokens for 3.5 steps


def _first_tokens_of_verify(p, q, samples, seed=0):
    """First output token of many verify steps with draft tokens drawn from q."""
    gen = torch.Generator().manual_seed(seed)
    firsts = []
    for _ in range(samples):
        drafted = torch.multinomial(q, 1, generator=gen)[:, 0]
        n, token = S.verify(p, q, drafted, gen)
        firsts.append(int(drafted[0]) if n > 0 else token)
    return torch.bincount(torch.tensor(firsts), minlength=p.shape[1])


def _chi2_pvalue(counts, probs):
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a token the target gives probability 0 was emitted"
    kept = probs[keep].double()
    expected = kept / kept.sum() * counts.sum()
    return chisquare(counts[keep].double().numpy(), expected.numpy()).pvalue


P = torch.tensor([[0.50, 0.05, 0.30, 0.10, 0.05], [0.2, 0.2, 0.2, 0.2, 0.2], [0.1, 0.2, 0.3, 0.2, 0.2]])
Q = torch.tensor([[0.05, 0.50, 0.10, 0.30, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]])


def test_verify_samples_from_the_target_distribution():
    counts = _first_tokens_of_verify(P, Q, 2000)
    assert _chi2_pvalue(counts, P[0]) > 1e-3


def test_verify_test_fails_when_the_residual_is_plain_target_sampling(monkeypatch):
    monkeypatch.setattr(V, "residual_distribution", lambda p, q: p)
    counts = _first_tokens_of_verify(P, Q, 2000)
    assert _chi2_pvalue(counts, P[0]) < 1e-6


# ---------------------------------------------------------------- tiny models: losslessness end to end


@pytest.fixture(scope="module")
def tiny_pair():
    target = attention.from_model(fixtures.tiny_model(seed=0, vocab_size=12))
    draft = attention.from_model(fixtures.tiny_model(seed=1, vocab_size=12, num_layers=1))
    return target, draft


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (no thread hand-offs per small op)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


PROMPT = torch.tensor([[1, 5, 7, 3, 9]])
SAMPLED = SamplingSettings(temperature=1.0)


@pytest.fixture(scope="module")
def distinct_pair(tiny_pair):
    """A target with a peaked first-token distribution and a draft that prefers other tokens (α ≈ 0.6)."""
    from dataclasses import replace
    target = replace(tiny_pair[0], lm_head=tiny_pair[0].lm_head * 2)
    draft = replace(target, lm_head=target.lm_head[torch.roll(torch.arange(12), 3)])
    return target, draft


def _sampled_first_tokens(target, draft, samples, gamma=2):
    counts = torch.zeros(target.vocab_size, dtype=torch.long)
    for seed in range(samples):
        r = S.generate(target, S.ModelDraft(draft), PROMPT, 2, gamma=gamma, settings=SAMPLED, seed=seed)
        counts[r.token_ids[0]] += 1
    return counts


def _first_probs(w):
    return torch.softmax(attention.forward(w, PROMPT)[0, -1].float(), -1)


def test_sampled_speculative_output_has_the_target_distribution(distinct_pair, one_thread):
    target, draft = distinct_pair
    p, q = _first_probs(target), _first_probs(draft)
    assert S.acceptance_rate(p, q) < 0.7  # the draft really differs, so the residual step matters
    counts = _sampled_first_tokens(target, draft, 500)
    assert _chi2_pvalue(counts, p) > 1e-3


def test_distribution_test_fails_without_the_residual_step(distinct_pair, one_thread, monkeypatch):
    monkeypatch.setattr(V, "residual_distribution", lambda p, q: p)
    target, draft = distinct_pair
    counts = _sampled_first_tokens(target, draft, 500)
    assert _chi2_pvalue(counts, _first_probs(target)) < 1e-6


@pytest.mark.parametrize("gamma,adaptive", [(1, False), (3, False), (4, True)])
def test_greedy_is_identical_to_target_only_on_the_tiny_model(tiny_pair, gamma, adaptive, one_thread):
    target, draft = tiny_pair
    ids = torch.tensor([[1, 4, 4, 8, 2, 4, 4]])
    want = kv_cache.generate(target, ids, 20)[0].tolist()
    subset = torch.tensor([0, 3, 4, 8, 11])
    for drafter in [S.ModelDraft(draft), S.NgramDraft(), S.ModelDraft(S.early_exit(target, 1)),
                    S.ModelDraft(S.reduced_head(draft, subset), subset)]:
        r = S.generate(target, drafter, ids, 20, gamma=gamma, adaptive=adaptive)
        assert r.token_ids == want, drafter
        assert r.target_passes == len(r.steps) and r.proposed >= r.accepted
        assert r.tokens_per_pass >= 1.0


def test_perfect_draft_accepts_everything_and_adds_bonus_tokens(tiny_pair, one_thread):
    target, _ = tiny_pair
    r = S.generate(target, S.ModelDraft(target), PROMPT, 15, gamma=4)
    assert r.alpha == 1.0 and all(s.bonus for s in r.steps)
    assert r.target_passes == 3 and r.tokens_per_pass == 5.0


def test_eos_stops_generation_and_target_only_agrees(tiny_pair):
    target, draft = tiny_pair
    want = S.target_only(target, PROMPT, 12).token_ids
    stop = want[5]
    r = S.generate(target, S.ModelDraft(draft), PROMPT, 12, eos_token_id=stop)
    assert r.token_ids == want[:want.index(stop) + 1]


def test_repetition_penalty_greedy_matches_target_only(tiny_pair, one_thread):
    target, draft = tiny_pair
    settings = SamplingSettings(temperature=0, repetition_penalty=1.3)
    want = S.target_only(target, PROMPT, 16, settings).token_ids
    assert S.generate(target, S.ModelDraft(draft), PROMPT, 16, settings=settings).token_ids == want


def test_prompt_lookup_proposes_what_followed_the_last_match():
    assert S.lookup([1, 2, 3, 9, 1, 2], 2) == [3, 9]
    assert S.lookup([1, 2, 3, 9, 5, 2], 3) == [3, 9, 5]
    assert S.lookup([1, 2, 3], 2) == []


# ---------------------------------------------------------------- bad input


def test_bad_input_errors(tiny_pair):
    target, draft = tiny_pair
    with pytest.raises(ValueError, match="gamma must be an int in \\[1"):
        S.generate(target, S.ModelDraft(draft), PROMPT, 4, gamma=0)
    other = attention.from_model(fixtures.tiny_model(seed=1, vocab_size=20))
    with pytest.raises(ValueError, match="draft vocab size must equal the target's \\(12\\), got 20"):
        S.generate(target, S.ModelDraft(other), PROMPT, 4)
    tok_a, tok_b = fixtures.tiny_tokenizer(), fixtures.tiny_tokenizer()
    tok_b.add_tokens(["<extra>"])
    with pytest.raises(ValueError, match="draft tokenizer must be the target's"):
        S.generate(target, S.ModelDraft(draft, tokenizer=tok_b), PROMPT, 4, tokenizer=tok_a)
    S.generate(target, S.ModelDraft(draft, tokenizer=fixtures.tiny_tokenizer()), PROMPT, 2, tokenizer=tok_a)
    meta = attention.from_model(fixtures.tiny_model(seed=1, vocab_size=12).to("meta"))
    with pytest.raises(ValueError, match="draft must be on the target's device"):
        S.generate(target, S.ModelDraft(meta), PROMPT, 4)
    with pytest.raises(TypeError, match="target must be llmlab.attention.LlamaWeights"):
        S.generate("model", S.NgramDraft(), PROMPT, 4)
    with pytest.raises(ValueError, match="input_ids must hold one sequence"):
        S.generate(target, S.NgramDraft(), PROMPT.repeat(2, 1), 4)
    with pytest.raises(ValueError, match="vocab_ids must have one id per output row"):
        S.ModelDraft(draft, torch.tensor([1, 2]))


# ---------------------------------------------------------------- the real model and the trained draft


@pytest.fixture(scope="module")
def real_target(real):
    model, tokenizer = real
    return attention.from_model(model, max_positions=1024), model, tokenizer


@pytest.mark.model
def test_greedy_speculative_equals_target_greedy_on_the_20_prompts(real_target):
    """Every draft kind (model: the trained token draft; feature; ngram) on the 20 evaluation prompts, fp32.

    One plain reference per prompt serves all kinds; 8 new tokens at γ = 4 still verify, reject and roll back
    several times per prompt. The early-exit draft is a ModelDraft like the token draft (tiny-model tests cover it).
    """
    w, _, tok = real_target
    drafts = [S.trained_draft(w, tok), S.trained_feature_draft(w, tok), S.NgramDraft()]
    rejections = dict.fromkeys(d.name for d in drafts)
    for prompt in S.prompts("eval"):
        ids = S.encode(tok, prompt)
        want = kv_cache.generate(w, ids, 8, eos_token_id=tok.eos_token_id)[0].tolist()
        for draft in drafts:
            got = S.generate(w, draft, ids, 8, gamma=4, eos_token_id=tok.eos_token_id, tokenizer=tok)
            assert got.token_ids == want, (prompt, draft.name)
            rejections[draft.name] = (rejections[draft.name] or 0) + got.rejections
    assert all(rejections.values()), rejections  # every kind was rolled back somewhere


@pytest.mark.model
def test_load_draft_is_a_transformers_llama_matching_the_fast_draft(real_target):
    w, model, tok = real_target
    draft, draft_tok = S.load_draft(model, tok)
    assert type(draft).__name__ == "LlamaForCausalLM" and draft_tok is tok
    assert draft.config.num_hidden_layers < model.config.num_hidden_layers
    fast = S.trained_draft(w, tok)
    ids = S.encode(tok, S.prompts("eval")[0])
    with torch.inference_mode():
        hf = draft(ids).logits[0, -1]
        ours = attention.forward(fast.weights, ids)[0, -1]
    assert int(fast.vocab_ids[ours.argmax()]) == int(hf.argmax())
    assert torch.allclose(hf[fast.vocab_ids], ours, atol=1e-3)
