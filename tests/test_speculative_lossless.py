"""Losslessness by dtype: identical greedy output in float32/float64; in bf16 every divergence starts at a near-tie."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab import speculative as S
from llmlab.kit import fixtures
from llmlab.speculative import decode as D

PROMPT = torch.tensor([[1, 4, 4, 8, 2, 4, 4]])


@pytest.fixture(scope="module")
def tiny():
    """A target and a draft that disagrees with it (its head rows rolled by 3), so rejections really happen."""
    target = attention.from_model(fixtures.tiny_model(seed=0, vocab_size=12))
    return target, replace(target, lm_head=target.lm_head[torch.roll(torch.arange(12), 3)])


def _drafts(target, draft):
    return [S.ModelDraft(draft), S.NgramDraft(), S.ModelDraft(S.early_exit(target, 1))]


def test_cast_weights_casts_every_float_tensor_and_keeps_the_head_pair(tiny):
    w = S.cast_weights(tiny[0], torch.bfloat16)
    assert w.embed.dtype == w.lm_head.dtype == w.layers[0].wqkv.dtype == w.cos.dtype == torch.bfloat16
    assert w.head_rows is None or w.head_rows[0] is w.lm_head
    assert tiny[0].embed.dtype == torch.float32  # the original is untouched
    with pytest.raises(ValueError, match="dtype must be a floating torch.dtype"):
        S.cast_weights(tiny[0], torch.int8)
    with pytest.raises(TypeError, match="w must be llmlab.attention.LlamaWeights"):
        S.cast_weights("model", torch.float32)


def test_first_divergence():
    assert S.first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert S.first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert S.first_divergence([1, 2], [1, 2, 3]) == 2
    assert S.first_divergence([], [4]) == 0


def test_float64_greedy_is_identical_for_every_draft_kind(tiny):
    target, draft = (S.cast_weights(w, torch.float64) for w in tiny)
    want = kv_cache.generate(target, PROMPT, 20)[0].tolist()
    for drafter in _drafts(target, draft):
        r = S.generate(target, drafter, PROMPT, 20, gamma=3)
        assert r.token_ids == want, drafter
    assert S.generate(target, S.ModelDraft(draft), PROMPT, 20, gamma=3).rejections > 0


def test_pass_shape_error_is_rounding_sized_in_float32_and_float64(tiny):
    ids = torch.tensor([[1, 5, 7, 3, 9, 2, 6, 8]])
    assert S.pass_shape_error(S.cast_weights(tiny[0], torch.float64), ids, 5) < 1e-9
    assert S.pass_shape_error(tiny[0], ids, 5) < 1e-4
    with pytest.raises(ValueError, match="k must be an int in"):
        S.pass_shape_error(tiny[0], ids, 8)


def test_a_mixed_dtype_pair_is_a_clear_error(tiny):
    target = S.cast_weights(tiny[0], torch.bfloat16)
    with pytest.raises(ValueError, match=r"draft dtype must equal the target's \(torch.bfloat16\), got torch.float32"):
        S.generate(target, S.ModelDraft(tiny[1]), PROMPT, 4)


def test_a_real_bug_diverges_at_a_clear_margin_not_a_near_tie(tiny, monkeypatch):
    """The near-tie check is not vacuous: an off-by-one verify (one draft token too many) is caught."""
    target, draft = tiny
    want = kv_cache.generate(target, PROMPT, 20)[0].tolist()
    monkeypatch.setattr(D, "verify_greedy", lambda targets, drafted: (len(drafted), targets[len(drafted)]))
    got = S.generate(target, S.ModelDraft(draft), PROMPT, 20, gamma=3).token_ids
    tolerance = 2 * S.pass_shape_error(target, PROMPT, 4)
    d = S.divergence(target, PROMPT, want, got, tolerance)
    assert d is not None and not d.near_tie and d.margin > 100 * tolerance


@pytest.mark.model
def test_bf16_divergences_from_plain_bf16_all_start_at_near_ties(real):
    """What it checks: speculative bf16 greedy output (trained token and feature drafts, prompt lookup, early exit)
    equals plain bf16 greedy output, or its first divergence is at a near-tie: plain's logit margin between its token
    and the speculative token <= 2 ε, with ε the largest |logit| gap between a 5-token pass and 5 one-token passes
    measured on the same prompts. A rollback or acceptance bug diverges at a clear margin (test above) and fails here.
    3 prompts x 40 tokens: long enough that bf16 divergences do occur (benchmarks/bench_speculative.py counts them
    on more prompts); the test passes when there are none, since identical output is lossless too."""
    model, tok = real
    w = S.cast_weights(attention.from_model(model, max_positions=1024), torch.bfloat16)
    prompts = [S.encode(tok, p) for p in S.prompts("eval")[:3]]
    tolerance = 2 * max(S.pass_shape_error(w, ids, 5) for ids in prompts)
    drafts = [S.trained_draft(w, tok), S.trained_feature_draft(w, tok), S.NgramDraft(),
              S.ModelDraft(S.early_exit(w, 4))]
    diverged = []
    for ids in prompts:
        want = kv_cache.generate(w, ids, 40, eos_token_id=tok.eos_token_id)[0].tolist()
        for draft in drafts:
            got = S.generate(w, draft, ids, 40, gamma=4, eos_token_id=tok.eos_token_id).token_ids
            d = S.divergence(w, ids, want, got, tolerance)
            if d is not None:
                diverged.append(d)
    assert all(d.near_tie for d in diverged), [d for d in diverged if not d.near_tie]
