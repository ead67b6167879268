"""The feature-level (EAGLE-style) draft: pairing, its own KV cache, rollback, and position-1 alignment."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from llmlab import attention, kv_cache
from llmlab import speculative as S
from llmlab.kit import fixtures
from llmlab.sampling import SamplingSettings
from llmlab.speculative import feature_draft as FD

PROMPT = torch.tensor([[1, 5, 7, 3, 9]])


@pytest.fixture(scope="module")
def tiny():
    """A float64 tiny target with a random untied head (so greedy output varies) and a noisy feature draft."""
    w = S.cast_weights(attention.from_model(fixtures.tiny_model(seed=0, vocab_size=16)), torch.float64)
    g = torch.Generator().manual_seed(0)
    w = replace(w, lm_head=attention.input_major(torch.randn(16, 64, generator=g, dtype=torch.float64)),
                head_rows=None)
    return w, FD.head_from_tensors(_tensors(w), w, None)


def _tensors(w):
    """Starting tensors with the embedding half of fc scaled up to the features' size, so both inputs matter."""
    t = FD.initial_tensors(w, 128, noise=0.3, seed=1)
    t["fc"][:, :w.hidden_size] /= float(w.embed.std())
    return t


def _true_features(w, ids):
    hidden = []
    attention.forward(w, ids, features=hidden)
    return hidden[0][0]


def _step_starts(result, n_prompt):
    """Committed length at the start of every step that drafted something."""
    length, out = n_prompt, []
    for s in result.steps:
        if s.drafted:
            out.append((length, s))
        length += s.accepted + 1
    return out


def test_feature_pairs_pair_the_feature_at_t_with_token_t_plus_1():
    f = torch.arange(12.0).view(4, 3)
    ids, feats = FD.feature_pairs([10, 11, 12, 13], f)
    assert ids == [11, 12, 13] and torch.equal(feats, f[:3])
    ids, feats = FD.feature_pairs([10, 11, 12, 13, 14], f[:2])  # features known for positions 0, 1 only
    assert ids == [11, 12] and torch.equal(feats, f[:2])


def test_the_forward_uses_the_pairs_row_by_row(tiny):
    """Draft position t reads f_t and token t+1: changing token t+1 changes row t and no earlier row."""
    w, head = tiny
    f = _true_features(w, PROMPT)[None, :-1]
    a, _ = FD.feature_forward(head, PROMPT[:, 1:], f)
    changed = PROMPT[:, 1:].clone()
    changed[0, 2] = (changed[0, 2] + 1) % 16
    b, _ = FD.feature_forward(head, changed, f)
    assert torch.equal(a[0, :2], b[0, :2]) and not torch.equal(a[0, 2], b[0, 2])


def test_the_draft_cache_is_prefilled_from_the_prompts_true_features(tiny):
    w, head = tiny
    draft = S.FeatureDraft(head)
    tokens = PROMPT[0].tolist()
    f = _true_features(w, PROMPT)
    draft.start(tokens, 32, features=f[:-1])
    drafted, _ = draft.propose(tokens, 1, S.GREEDY, torch.Generator())
    assert draft.cache.length == len(tokens) - 1
    fresh = kv_cache.KVCache.for_weights(head.weights, 1, 32)
    logits, _ = FD.feature_forward(head, PROMPT[:, 1:], f[None, :-1], fresh)
    assert torch.allclose(draft.cache.keys[0][:, :, :4], fresh.keys[0][:, :, :4], atol=1e-12)
    assert drafted == [int(logits[0, -1].argmax())]


@pytest.mark.parametrize("gamma", [1, 3, 5])
def test_after_every_verify_only_true_feature_positions_remain(tiny, gamma):
    """At the end, the draft's cache (fed its pending true features) equals one pass over the final text."""
    w, head = tiny
    draft = S.FeatureDraft(head)
    r = S.generate(w, draft, PROMPT, 30, gamma=gamma)
    assert r.rejections > 0 and r.accepted > 0  # both branches of the rollback ran
    tokens = PROMPT[0].tolist() + r.token_ids
    n = len(tokens) - 1  # pairs (f_t, token t+1) up to the last token, whose own feature is not computed yet
    fresh = kv_cache.KVCache.for_weights(head.weights, 1, 64)
    with torch.inference_mode():  # the loop built the draft's cache in inference mode
        draft.propose(tokens, 1, S.GREEDY, torch.Generator())  # feeds the last verify's true features
        FD.feature_forward(head, torch.tensor([tokens[1:n + 1]]),
                           _true_features(w, torch.tensor([tokens]))[None, :n], fresh)
    assert draft.cache.length == n
    for got, want in [(draft.cache.keys[0], fresh.keys[0]), (draft.cache.values[0], fresh.values[0])]:
        assert torch.allclose(got[:, :, :n], want[:, :, :n], atol=1e-10)


def test_position_1_acceptance_equals_teacher_forced_top1_agreement(tiny):
    w, head = tiny
    draft = S.FeatureDraft(head)
    r = S.generate(w, draft, PROMPT, 40, gamma=3)
    agree = S.teacher_forced_top1(w, draft, torch.tensor([PROMPT[0].tolist() + r.token_ids]))
    starts = _step_starts(r, PROMPT.shape[1])
    loop = [s.accepted >= 1 for _, s in starts]
    assert [bool(agree[length - 2]) for length, _ in starts] == loop
    assert 0 < sum(loop) < len(loop)  # both outcomes occur, so the comparison can fail
    assert r.alpha_by_position(1)[0] == pytest.approx(sum(loop) / len(loop))


def test_an_off_by_one_pairing_breaks_the_alignment_test(tiny, monkeypatch):
    """Pairing f_t with token t (not t+1) in the loop only costs speed: the teacher-forced comparison catches it."""
    w, head = tiny
    monkeypatch.setattr(FD, "feature_pairs", lambda tokens, f: (tokens[:f.shape[0]], f))
    draft = S.FeatureDraft(head)
    r = S.generate(w, draft, PROMPT, 40, gamma=3)
    assert r.token_ids == kv_cache.generate(w, PROMPT, 40)[0].tolist()  # still lossless
    agree = S.teacher_forced_top1(w, draft, torch.tensor([PROMPT[0].tolist() + r.token_ids]))
    starts = _step_starts(r, PROMPT.shape[1])
    assert [bool(agree[length - 2]) for length, _ in starts] != [s.accepted >= 1 for _, s in starts]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_greedy_with_the_feature_draft_is_the_targets_greedy(tiny, dtype):
    w, head = tiny
    w = S.cast_weights(w, dtype)
    tensors = _tensors(w)
    subset = torch.tensor([0, 3, 4, 8, 11, 15])
    want = kv_cache.generate(w, PROMPT, 24)[0].tolist()
    for draft in [S.FeatureDraft(FD.head_from_tensors(tensors, w, None)),
                  S.FeatureDraft(FD.head_from_tensors(tensors, w, subset), subset)]:
        for gamma, adaptive in [(1, False), (4, True)]:
            assert S.generate(w, draft, PROMPT, 24, gamma=gamma, adaptive=adaptive).token_ids == want
    one = S.generate(w, S.FeatureDraft(FD.head_from_tensors(tensors, w, None)), PROMPT[:, :1], 8)
    assert one.token_ids == kv_cache.generate(w, PROMPT[:, :1], 8)[0].tolist()


def test_sampling_with_the_feature_draft_returns_its_distributions(tiny):
    w, head = tiny
    draft = S.FeatureDraft(head)
    tokens = PROMPT[0].tolist()
    draft.start(tokens, 32, features=_true_features(w, PROMPT)[:-1])
    out, q = draft.propose(tokens, 3, SamplingSettings(temperature=1.0), torch.Generator().manual_seed(0))
    assert len(out) == 3 and q.shape == (3, 16) and torch.allclose(q.sum(-1), torch.ones(3, dtype=q.dtype))
    r = S.generate(w, S.FeatureDraft(head), PROMPT, 12, settings=SamplingSettings(temperature=1.0), seed=3)
    assert len(r.token_ids) == 12


def test_feature_draft_bad_input(tiny):
    w, head = tiny
    draft = S.FeatureDraft(head)
    with pytest.raises(ValueError, match="features must cover the prompt but its last token \\(4 rows\\), got 5"):
        draft.start(PROMPT[0].tolist(), 16, features=_true_features(w, PROMPT))
    with pytest.raises(ValueError, match="features must be the target's final-norm hidden states"):
        draft.start(PROMPT[0].tolist(), 16)
    draft.start(PROMPT[0].tolist(), 16, features=_true_features(w, PROMPT)[:-1])
    draft.propose(PROMPT[0].tolist(), 2, S.GREEDY, torch.Generator())
    with pytest.raises(ValueError, match="features must cover positions 4..5 \\(2 rows\\), got 3"):
        draft.commit(6, features=torch.zeros(3, 64, dtype=torch.float64))
    with pytest.raises(TypeError, match="head must be a speculative.FeatureHead"):
        S.FeatureDraft(w)
    with pytest.raises(ValueError, match="draft dtype must equal the target's"):
        S.generate(S.cast_weights(w, torch.float32), S.FeatureDraft(head), PROMPT, 4)
    wide = attention.from_model(fixtures.tiny_model(seed=0, vocab_size=16, hidden_size=32))
    with pytest.raises(ValueError, match="feature draft hidden size must equal the target's \\(32\\), got 64"):
        S.generate(wide, S.FeatureDraft(head), PROMPT, 4)


def test_training_time_test_unrolling_predicts_what_drafting_predicts(tiny):
    """Step k of the unrolled training forward at pair L-2+k equals the k-th drafted step after L true tokens."""
    w, head = tiny
    tokens = PROMPT[0].tolist()
    draft = S.FeatureDraft(head)
    draft.start(tokens, 32, features=_true_features(w, PROMPT)[:-1])
    seen, step = [], draft._step
    draft._step = lambda ids, f: seen.append(step(ids, f)) or seen[-1]
    drafted, _ = draft.propose(tokens, 3, S.GREEDY, torch.Generator())
    chain = tokens + drafted  # the draft's own tokens: the unrolled steps read them as the next tokens
    feats = torch.zeros(1, len(chain) - 1, 64, dtype=torch.float64)
    feats[:, :len(tokens) - 1] = _true_features(w, PROMPT)[None, :-1]  # later true features are never read
    steps = FD.unrolled_features(head, torch.tensor([chain[1:]]), feats, 3)
    logits = [FD.output_head(head.weights, h) for h in steps]
    n = len(tokens)
    assert [int(logits[k][0, n - 2 + k].argmax()) for k in range(3)] == drafted
    for k in range(3):  # seen[0] is the prefill's last row (step 1), seen[k] the k-th drafted step
        assert torch.allclose(steps[k][0, n - 2 + k], seen[k][1][0], atol=1e-10)
    one, _ = FD.feature_forward(head, torch.tensor([chain[1:]]), feats)
    assert torch.allclose(steps[0], FD.predicted_features(head, torch.tensor([chain[1:]]), feats), atol=1e-12)
    assert torch.equal(one.argmax(-1), logits[0].argmax(-1))


def test_training_batches_mask_the_pairs_whose_token_t_plus_2_is_an_answer_token():
    import importlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    train_draft = importlib.import_module("train_draft")
    rows = [{"prompt_ids": [1, 2, 3], "answer_ids": [7, 8, 9], "features": torch.randn(6, 4)},
            {"prompt_ids": [1, 2], "answer_ids": [5], "features": torch.randn(3, 4)}]
    ids, feats, mask = train_draft.feature_batch(rows)
    assert ids.tolist() == [[1, 2, 3, 7, 8, 9], [1, 2, 5, 0, 0, 0]]
    assert torch.equal(feats[0], rows[0]["features"]) and torch.equal(feats[1, 3:], torch.zeros(3, 4))
    # pair t = (f_t, token t+1) predicts token t+2: answer tokens 7, 8, 9 sit at 3, 4, 5, so pairs 1, 2, 3
    assert mask.tolist() == [[False, True, True, True, False], [True, False, False, False, False]]
