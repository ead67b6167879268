"""Tests for llmlab.interpret on the tiny model: lens, heads, saliency, counterfactuals, probes."""

from __future__ import annotations

import pytest
import torch

from llmlab import interpret
from llmlab.interpret import saliency
from llmlab.tasks import sentences

PROMPT, TARGET = "The cat sat on", " mat"


def test_residual_stream_starts_at_embeddings_and_is_not_normed_at_the_end(tiny):
    model, tok = tiny
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    stream = interpret.residual_stream(model, ids)
    assert stream.shape == (model.config.num_hidden_layers + 1, 1, ids.shape[1], model.config.hidden_size)
    assert torch.equal(stream[0], model.get_input_embeddings()(ids))             # entry 0: the embeddings
    hf_last = model(ids, output_hidden_states=True).hidden_states[-1]
    assert torch.allclose(hf_last, model.model.norm(stream[-1]), atol=1e-6)       # transformers' last is normed
    assert not torch.allclose(hf_last, stream[-1], atol=1e-3)


def test_lens_at_the_last_layer_reproduces_the_logits(tiny):
    model, tok = tiny
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    assert interpret.lens_matches_model(model, ids) < 1e-5
    with torch.no_grad():
        expected = torch.softmax(model(ids).logits[0, -1], -1)
    result = interpret.logit_lens(model, tok, PROMPT)
    assert result.top_ids.shape == result.top_probs.shape == (3, ids.shape[1])
    assert result.last_probs.shape == (3, model.config.vocab_size)
    assert torch.allclose(result.last_probs[-1], expected, atol=1e-5)
    assert torch.allclose(result.last_probs.sum(-1), torch.ones(3), atol=1e-4)
    token = interpret.target_token_id(tok, TARGET)
    assert torch.equal(result.target_probability(token), result.last_probs[:, token])
    assert len(result.top_tokens(tok, 1, k=4)) == 4
    assert result.tokens == [tok.decode([i]) for i in ids[0]]


def test_layer_logits_follow_the_offset(tiny):
    model, tok = tiny
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(interpret.layer_logits(model, ids, 2), model(ids).logits, atol=1e-5)
        emb = model.lm_head(model.model.norm(model.get_input_embeddings()(ids)))
        assert torch.allclose(interpret.layer_logits(model, ids, 0), emb, atol=1e-6)


@pytest.mark.parametrize("call, message", [
    (lambda m, t: interpret.layer_logits(m, t("a b", return_tensors="pt")["input_ids"], 3), r"layer .*\[0, 2\].*3"),
    (lambda m, t: interpret.layer_logits(m, t("a b", return_tensors="pt")["input_ids"], -1), r"layer"),
    (lambda m, t: interpret.logit_lens(m, t, ""), r"prompt must be a non-empty str"),
    (lambda m, t: interpret.logit_lens(m, t, "   "), r"prompt must be a non-empty str"),
    (lambda m, t: interpret.head_ablation_effects(m, t, PROMPT, ""), r"target must tokenize to at least one"),
    (lambda m, t: interpret.token_saliency(m, t, PROMPT, ""), r"target must tokenize to at least one"),
    (lambda m, t: interpret.token_saliency(m, t, PROMPT, TARGET, method="lime"), r"method must be one of"),
    (lambda m, t: interpret.edit_token(m, t, PROMPT, TARGET, 99), r"position must be an int in"),
    (lambda m, t: interpret.drop_each_token(m, t, "a", TARGET), r"at least 2 tokens"),
    (lambda m, t: interpret.logit_lens(m, t, PROMPT).top_tokens(t, 3), r"layer must be an int in \[0, 2\]"),
])
def test_bad_input_is_a_clear_value_error(tiny, call, message):
    model, tok = tiny
    with pytest.raises(ValueError, match=message):
        call(model, tok)


@pytest.mark.parametrize("heads, message", [([(2, 0)], r"layer must be an int in \[0, 1\], got 2"),
                                            ([(0, 4)], r"head must be an int in \[0, 3\], got 4")])
def test_ablate_heads_rejects_out_of_range(tiny, heads, message):
    model, _ = tiny
    with pytest.raises(ValueError, match=message):
        with interpret.ablate_heads(model, heads):
            pass


def test_attention_maps_are_distributions_per_layer_and_head(tiny):
    model, tok = tiny
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    maps = interpret.attention_maps(model, ids)
    n = ids.shape[1]
    assert maps.shape == (2, 4, n, n)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, n), atol=1e-5)
    assert float(maps.triu(1).abs().max()) == 0.0                                  # causal


def test_head_ablation_sweep_matches_one_head_at_a_time(tiny):
    model, tok = tiny
    effects = interpret.head_ablation_effects(model, tok, PROMPT, TARGET)
    assert effects.probs.shape == (2, 4)
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    token = interpret.target_token_id(tok, TARGET)
    with torch.no_grad():
        assert abs(float(interpret.next_token_probability(model, ids, token)[0]) - effects.base) < 1e-6
        for layer, head in [(0, 1), (1, 3)]:
            with interpret.ablate_heads(model, [(layer, head)]):
                alone = float(interpret.next_token_probability(model, ids, token)[0])
            assert abs(alone - float(effects.probs[layer, head])) < 1e-5
        after = float(interpret.next_token_probability(model, ids, token)[0])
    assert abs(after - effects.base) < 1e-7                                        # hooks removed
    top = effects.top(3)
    assert len(top) == 3 and top[0][2] == float(effects.delta.min())


def test_gradient_x_input_and_integrated_gradients_on_known_functions():
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    x = torch.tensor([[2.0, 1.0], [-1.0, 4.0]])

    def linear(batch):
        return (batch * w).sum((-1, -2))

    def square(batch):
        return (batch ** 2).sum((-1, -2))

    assert torch.allclose(interpret.gradient_x_input(linear, x), w * x)
    assert torch.allclose(interpret.integrated_gradients(linear, x, steps=3), w * x)
    # the midpoint rule is exact for a gradient linear in alpha: attributions x², summing to f(x) - f(0)
    assert torch.allclose(interpret.integrated_gradients(square, x, steps=5, batch_size=2), x ** 2)
    base = torch.ones_like(x)
    ig = interpret.integrated_gradients(square, x, base, steps=4)
    assert abs(float(ig.sum()) - float(square(x[None]) - square(base[None]))) < 1e-4
    with pytest.raises(ValueError, match="steps must be an int"):
        interpret.integrated_gradients(square, x, steps=0)
    with pytest.raises(ValueError, match="baseline must be a tensor of x's shape"):
        interpret.integrated_gradients(square, x, torch.zeros(3))


def test_token_saliency_on_the_model(tiny):
    model, tok = tiny
    n_prompt = len(tok(PROMPT, add_special_tokens=False)["input_ids"])
    n_target = len(tok(TARGET, add_special_tokens=False)["input_ids"])
    gxi = interpret.token_saliency(model, tok, PROMPT, TARGET)
    assert gxi.scores.shape == (n_prompt + n_target,) and len(gxi.tokens) == n_prompt + n_target
    assert gxi.target_mask.sum() == n_target and gxi.completeness_gap is None
    assert float(gxi.scores[-1]) == 0.0                                            # the last token feeds nothing
    ids, mask = saliency.prompt_and_target(model, tok, PROMPT, TARGET)
    with torch.no_grad():
        logits = torch.log_softmax(model(ids[None]).logits[0, :-1], -1)
    expected = logits[torch.arange(len(ids) - 1), ids[1:]][mask[1:]].sum()
    assert abs(gxi.value - float(expected)) < 1e-4

    ig = interpret.token_saliency(model, tok, PROMPT, TARGET, method="integrated_gradients", steps=64)
    assert ig.completeness_gap < 0.02 * max(1.0, abs(ig.value - ig.baseline_value))
    assert float(ig.scores[0]) == 0.0                                              # the baseline keeps token 0
    norm = interpret.token_saliency(model, tok, PROMPT, None, method="grad_norm")
    assert bool((norm.scores >= 0).all()) and norm.target_mask.sum() == 1          # None: the greedy next token


def test_counterfactuals(tiny):
    model, tok = tiny
    tokens, probs, base = interpret.drop_each_token(model, tok, PROMPT, TARGET)
    assert len(tokens) == len(probs) == len(tok(PROMPT)["input_ids"])
    edit = interpret.edit_token(model, tok, PROMPT, TARGET, 2)
    assert abs(edit.prob_before - base) < 1e-6 and abs(edit.prob_after - float(probs[2])) < 1e-5
    assert edit.tokens_after == tokens[:2] + tokens[3:]
    swap = interpret.edit_token(model, tok, PROMPT, TARGET, -1, replacement="X")
    assert swap.tokens_after[-1] == "X" and len(swap.tokens_after) == len(tokens)


def test_hidden_features_do_not_depend_on_padding(tiny):
    model, tok = tiny
    texts = ["short", "a much longer sentence than the first"]
    for pool in ("mean", "last"):
        both = interpret.hidden_features(model, tok, texts, pool=pool)
        alone = interpret.hidden_features(model, tok, texts[:1], pool=pool)
        assert both.shape == (3, 2, model.config.hidden_size)
        assert torch.allclose(both[:, :1], alone, atol=1e-5)
    with pytest.raises(ValueError, match="pool must be one of"):
        interpret.hidden_features(model, tok, texts, pool="max")
    with pytest.raises(ValueError, match=r"texts\[1\] must be a non-empty str"):
        interpret.hidden_features(model, tok, ["ok", ""])


def test_probes_learn_a_separable_task_and_refuse_leaks():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(40) % 2
    x = torch.randn(40, 8, generator=gen) + 3 * y[:, None].float()
    probe = interpret.train_probe(x[:30], y[:30])
    assert interpret.accuracy(probe, x[30:], y[30:]) == 1.0
    features = torch.stack([torch.randn(40, 8, generator=gen), x])                 # layer 0: noise, layer 1: signal
    acc = interpret.probe_accuracy_by_layer(features, y.tolist(), range(30), range(30, 40))
    assert acc.shape == (2,) and acc[1] == 1.0 and acc[0] < 1.0
    with pytest.raises(ValueError, match="train and test must not share rows"):
        interpret.probe_accuracy_by_layer(features, y.tolist(), range(30), range(25, 40))


def test_accuracy_is_an_exact_python_float():
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(20) % 2
    x = torch.randn(20, 4, generator=gen) + 4 * y[:, None].float()
    probe = interpret.train_probe(x, y)
    assert interpret.accuracy(probe, x, y) == 1.0
    flipped = y.clone()
    flipped[:2] = 1 - flipped[:2]                                                 # 18 of 20 right
    acc = interpret.accuracy(probe, x, flipped)
    assert type(acc) is float and acc == 0.9                                      # not float32's 0.8999999761
    assert interpret.accuracy(probe, x[:3], 1 - y[:3]) == 0.0
    with pytest.raises(ValueError, match="y must have at least one item"):
        interpret.accuracy(probe, x[:0], y[:0])


def test_multitask_heads_share_one_forward(tiny):
    model, tok = tiny
    rows = sentences.load_sentences()[:12]
    texts = [r["text"] for r in rows]
    feats = interpret.hidden_features(model, tok, texts)
    heads, classes = {}, {}
    for task in sentences.TASKS:
        labels, classes[task] = sentences.label_ids(rows, task)
        if len(classes[task]) > 1:
            heads[task] = interpret.train_probe(feats[2], torch.tensor(labels), len(classes[task]), steps=5)
    multi = interpret.MultiTaskHeads(layer=2, heads=heads, classes=classes)
    pred = multi.predict(feats)
    assert set(pred) == set(heads) and all(len(v) == 12 for v in pred.values())
    timing = interpret.time_shared_vs_separate(model, tok, texts, multi)
    assert set(timing) == {"shared", "separate", "saved"} and timing["shared"] > 0


def test_sentences_split_keeps_translations_together():
    rows = sentences.load_sentences()
    assert len(rows) == 96 and {r["language"] for r in rows} == {"en", "fr", "es"}
    train, test = sentences.split_by_group(rows, 0.25, seed=0)
    assert not set(train) & set(test) and len(train) + len(test) == 96
    assert not {rows[i]["group"] for i in train} & {rows[i]["group"] for i in test}
    labels, classes = sentences.label_ids(rows, "topic")
    assert classes == ["food", "sport", "technology", "weather"] and max(labels) == 3
    with pytest.raises(ValueError, match="task must be one of"):
        sentences.label_ids(rows, "colour")
