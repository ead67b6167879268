"""Tests for llmlab.lora: LoRA from scratch vs peft, merge, memory arithmetic, merging methods, the task."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from data_scripts import load_script

import llmlab
from llmlab import lora
from llmlab.kit import fixtures
from llmlab.tasks import orders

TARGETS = ["q_proj", "v_proj", "down_proj"]


def tiny_with_random_lora(r: int = 4, alpha: float = 8, seed: int = 1):
    """The tiny model with from-scratch LoRA on TARGETS and a non-zero B (as if trained)."""
    model = fixtures.tiny_model()
    lora.inject_lora(model, TARGETS, r=r, alpha=alpha)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora.lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.1)
    return model.eval()


IDS = torch.randint(3, 259, (2, 12), generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- LoRALinear


def test_lora_linear_starts_as_the_base_and_follows_the_formula():
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    layer = lora.LoRALinear(base, r=2, alpha=6)
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), base(x))  # B = 0 at init
    assert layer.lora_A.abs().sum() > 0 and layer.scale == 3.0
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = x @ base.weight.T + base.bias + 3.0 * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def test_lora_linear_dropout_only_in_training():
    torch.manual_seed(0)
    layer = lora.LoRALinear(torch.nn.Linear(8, 8), r=2, alpha=2, dropout=0.5)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 8)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    layer.train()
    assert not torch.allclose(layer(x), layer.eval()(x))


@pytest.mark.parametrize("kwargs,message", [
    ({"r": 0}, r"r must be an int in \[1, inf\), got 0"),
    ({"r": -2}, r"r must be an int in \[1, inf\), got -2"),
    ({"alpha": 0}, r"alpha must be in \(0, inf\), got 0"),
    ({"alpha": -1.0}, r"alpha must be in \(0, inf\), got -1.0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"dropout": -0.1}, r"dropout must be in \[0, 1\), got -0.1"),
])
def test_bad_lora_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora.LoRALinear(torch.nn.Linear(4, 4), **kwargs)
    with pytest.raises(ValueError, match=message):
        lora.inject_lora(fixtures.tiny_model(), ["q_proj"], **kwargs)
    with pytest.raises(ValueError, match=message):
        lora.lora_config(**{"alpha" if k == "alpha" else k: v for k, v in kwargs.items()})


@pytest.mark.parametrize("kwargs,message", [
    ({"r": 2.0}, "r must be an int, got float 2.0"),
    ({"r": True}, "r must be an int, got bool True"),
    ({"alpha": "16"}, "alpha must be a number, got str '16'"),
    ({"dropout": None}, "dropout must be a number, got NoneType None"),
])
def test_wrong_type_lora_arguments_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        lora.validate_lora_args(**{"r": 8, "alpha": 16, "dropout": 0.0, **kwargs})


def test_lora_linear_rejects_non_linear_base():
    with pytest.raises(TypeError, match="base must be a torch.nn.Linear, got Conv1d"):
        lora.LoRALinear(torch.nn.Conv1d(2, 2, 1))


# ---------------------------------------------------------------- injection, counting, merging


def test_inject_lora_wraps_named_modules_and_counts_parameters():
    model = fixtures.tiny_model()
    _, total_before = lora.count_parameters(model)
    wrapped = lora.inject_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)
    assert wrapped == ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                       "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]
    trainable, total = lora.count_parameters(model)
    # q_proj: 64 -> 64, v_proj: 64 -> 32 (2 kv heads of 16); two layers
    assert trainable == 2 * (4 * (64 + 64) + 4 * (64 + 32))
    assert total == total_before + trainable
    torch.testing.assert_close(model(IDS).logits, fixtures.tiny_model()(IDS).logits)  # B = 0: unchanged


def test_inject_lora_unknown_target_lists_available_names():
    with pytest.raises(ValueError, match=r"\['qproj'\] not found. Available: \['down_proj', 'gate_proj', "
                                         r"'k_proj', 'lm_head', 'o_proj', 'q_proj', 'up_proj', 'v_proj'\]"):
        lora.inject_lora(fixtures.tiny_model(), ["q_proj", "qproj"])
    with pytest.raises(ValueError, match="target_modules must be a non-empty list"):
        lora.inject_lora(fixtures.tiny_model(), "q_proj")


def test_count_parameters_counts_tied_weights_once_and_checks_type():
    model = fixtures.tiny_model()
    assert lora.count_parameters(model)[1] == sum(p.numel() for p in model.parameters())
    assert model.lm_head.weight is model.model.embed_tokens.weight
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        lora.count_parameters("model")


def test_merge_and_unmerge_are_exact():
    model = tiny_with_random_lora()
    weights = {n: m.base.weight.detach().clone() for n, m in lora.lora_layers(model).items()}
    with torch.no_grad():
        before = model(IDS).logits
        assert lora.merge_lora(model) == 6
        merged = model(IDS).logits
        assert (merged - before).abs().max() <= 1e-5
        assert lora.unmerge_lora(model) == 6
        after = model(IDS).logits
    assert (after - before).abs().max() <= 1e-5
    for name, layer in lora.lora_layers(model).items():
        assert (layer.base.weight - weights[name]).abs().max() <= 1e-5


def test_merge_twice_is_a_no_op():
    model = tiny_with_random_lora()
    with torch.no_grad():
        before = model(IDS).logits
        lora.merge_lora(model)
        lora.merge_lora(model)
        assert (model(IDS).logits - before).abs().max() <= 1e-5


def test_from_scratch_lora_matches_peft_with_the_same_a_and_b():
    from peft import LoraConfig, get_peft_model

    ours = tiny_with_random_lora(r=4, alpha=8)
    theirs = get_peft_model(fixtures.tiny_model(), LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                                             target_modules=TARGETS)).eval()
    assert lora.copy_lora_into_peft(ours, theirs) == 6
    assert lora.count_parameters(ours)[0] == lora.count_parameters(theirs)[0]
    with torch.no_grad():
        ours_logits, theirs_logits = ours(IDS).logits, theirs(IDS).logits
        assert (ours_logits - theirs_logits).abs().max() <= 1e-5
        for name, layer in lora.lora_layers(ours).items():
            peft_layer = theirs.base_model.model.get_submodule(name)
            assert (layer.delta_weight() - peft_layer.get_delta_weight("default")).abs().max() <= 1e-6
        lora.merge_lora(ours)
        merged_peft = theirs.merge_and_unload()
        assert (ours(IDS).logits - merged_peft(IDS).logits).abs().max() <= 1e-5


def test_copy_into_peft_needs_matching_layers():
    from peft import LoraConfig, get_peft_model

    theirs = get_peft_model(fixtures.tiny_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    with pytest.raises(ValueError, match="peft_model must have a LoRA layer named 'model.layers.0.self_attn.v_proj'"):
        lora.copy_lora_into_peft(tiny_with_random_lora(), theirs)


# ---------------------------------------------------------------- low rank


def test_low_rank_approximation_and_error():
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(20, 3, generator=gen) @ torch.randn(3, 16, generator=gen)
    torch.testing.assert_close(lora.low_rank_approximation(delta, 3), delta, atol=1e-5, rtol=1e-5)
    errors = lora.relative_reconstruction_error(delta, [0, 1, 2, 3, 16])
    assert errors[0] == pytest.approx(1.0) and errors[-1] == 0.0
    assert errors[1] > errors[2] > errors[3] and errors[3] < 1e-6
    approx = lora.low_rank_approximation(delta, 1)
    assert torch.linalg.matrix_rank(approx) == 1
    assert ((delta - approx).norm() / delta.norm()).item() == pytest.approx(errors[1], rel=1e-5)
    with pytest.raises(ValueError, match=r"r must be an int in \[1, 16\], got 17"):
        lora.low_rank_approximation(delta, 17)
    with pytest.raises(ValueError, match=r"ranks must be ints in \[0, 16\], got 20"):
        lora.relative_reconstruction_error(delta, [20])
    with pytest.raises(ValueError, match="delta must be a 2-d tensor"):
        lora.relative_reconstruction_error(torch.zeros(3), [1])


def test_one_matrix_update_changes_only_that_matrix_and_restores_it(tiny):
    model = copy.deepcopy(tiny[0])
    tok = tiny[1]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    encoded = orders.encode_examples(tok, orders.load_orders("train")[:4])
    delta = lora.one_matrix_update(model, tok, encoded, "model.layers.1.self_attn.o_proj", steps=2, batch_size=2,
                                   lr=1e-2)
    assert delta.shape == (64, 64) and delta.abs().max() > 0
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) and p.requires_grad == flags[n]
    with pytest.raises(ValueError, match="module must name an nn.Linear of the model, got 'model.layers.1'"):
        lora.one_matrix_update(model, tok, encoded, "model.layers.1")


# ---------------------------------------------------------------- merging


def test_concat_lora_equals_weighted_sum_of_updates():
    gen = torch.Generator().manual_seed(0)
    a1, b1 = torch.randn(2, 6, generator=gen), torch.randn(5, 2, generator=gen)
    a2, b2 = torch.randn(3, 6, generator=gen), torch.randn(5, 3, generator=gen)
    a, b = lora.concat_lora([(a1, b1), (a2, b2)], weights=[0.7, 0.3])
    assert a.shape == (5, 6) and b.shape == (5, 5)
    torch.testing.assert_close(b @ a, 0.7 * b1 @ a1 + 0.3 * b2 @ a2)
    with pytest.raises(ValueError, match=r"adapters\[0\] must be \(A of shape"):
        lora.concat_lora([(b1, a1)])
    with pytest.raises(ValueError, match="weights must have one entry per adapter"):
        lora.concat_lora([(a1, b1)], weights=[1.0, 2.0])


def test_task_arithmetic():
    base = torch.tensor([1.0, 2.0])
    merged = lora.task_arithmetic(base, [torch.tensor([1.0, 0.0]), torch.tensor([0.0, -2.0])], weights=[0.5, 0.5])
    torch.testing.assert_close(merged, torch.tensor([1.5, 1.0]))
    with pytest.raises(ValueError, match="task_vectors must all have the same shape"):
        lora.task_arithmetic(base, [torch.zeros(3)])


def test_slerp_endpoints_midpoint_and_norm():
    v0, v1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    torch.testing.assert_close(lora.slerp(v0, v1, 0.0), v0)
    torch.testing.assert_close(lora.slerp(v0, v1, 1.0), v1)
    mid = lora.slerp(v0, v1, 0.5)
    torch.testing.assert_close(mid, torch.tensor([2 ** -0.5, 2 ** -0.5]))
    assert mid.norm() == pytest.approx(1.0) and ((v0 + v1) / 2).norm() < 0.75  # lerp shrinks, slerp does not
    torch.testing.assert_close(lora.slerp(v0, 2 * v0, 0.5), 1.5 * v0)  # parallel: falls back to lerp
    with pytest.raises(ValueError, match=r"t must be in \[0, 1\], got 1.5"):
        lora.slerp(v0, v1, 1.5)


def test_ties_merge_on_a_hand_example():
    t1 = torch.tensor([0.5, -0.1, 0.9, 0.0, -0.4])
    t2 = torch.tensor([0.3, 0.2, -0.8, 0.05, -0.6])
    t3 = torch.tensor([-0.2, 0.1, -0.3, 0.0, 0.02])
    trimmed = [lora.trim_top_k(t, 0.6) for t in (t1, t2, t3)]  # keep 3 of 5 largest magnitudes
    torch.testing.assert_close(trimmed[0], torch.tensor([0.5, 0.0, 0.9, 0.0, -0.4]))
    torch.testing.assert_close(lora.elect_sign(trimmed), torch.tensor([1.0, 1.0, -1.0, 0.0, -1.0]))
    merged = lora.ties_merge([t1, t2, t3], density=0.6)
    torch.testing.assert_close(merged, torch.tensor([0.4, 0.1, -0.55, 0.0, -0.5]))
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\], got 0"):
        lora.trim_top_k(t1, 0)


def test_dare_drops_and_rescales():
    tau = torch.ones(10_000)
    out = lora.dare(tau, 0.9, seed=0)
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 10.0))
    assert 0.08 < kept.numel() / tau.numel() < 0.12
    assert out.mean().item() == pytest.approx(1.0, abs=0.1)
    torch.testing.assert_close(lora.dare(tau, 0.0), tau)
    with pytest.raises(ValueError, match=r"drop_rate must be in \[0, 1\), got 1"):
        lora.dare(tau, 1)


# ---------------------------------------------------------------- the task


def test_shipped_orders_come_from_the_seeded_generator():
    train, test = load_script("ch05_make_orders").make_orders()
    assert orders.load_orders("train") == train and orders.load_orders("test") == test
    assert len(train) == 800 and len(test) == 120
    assert not {e["text"] for e in train} & {e["text"] for e in test}
    assert set(train[0]["target"]) == {"item", "qty", "color", "city", "shipping"}
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\], got 'dev'"):
        orders.load_orders("dev")


def test_parse_json_object_and_exact_match():
    target = {"item": "mug", "qty": 2, "color": "red", "city": "Oslo", "shipping": "express"}
    good = "Sure: " + json.dumps(target) + " done"
    assert orders.parse_json_object(good) == target
    assert orders.parse_json_object("no json here") is None
    assert orders.parse_json_object("{not: json}") is None
    wrong_type = json.dumps({**target, "qty": "2"})
    assert orders.exact_match([good, wrong_type, "x", json.dumps(target)], [target] * 4) == 0.5
    with pytest.raises(ValueError, match="replies and targets must be non-empty and of equal length, got 1 and 2"):
        orders.exact_match(["a"], [target, target])


def test_encode_and_collate_mask_the_prompt(tiny):
    tok = tiny[1]
    example = orders.load_orders("test")[0]
    enc = orders.encode_training_example(tok, example["text"], example["target"])
    answer = [t for t in enc["labels"] if t != -100]
    assert tok.decode(answer) == orders.target_json(example["target"]) + "<|im_end|>\n"  # the template's whole turn end
    assert enc["labels"][:len(enc["labels"]) - len(answer)] == [-100] * (len(enc["labels"]) - len(answer))
    batch = lora.collate([enc, {"input_ids": [5, 6], "labels": [-100, 6]}], pad_id=0)
    assert batch["input_ids"].shape == (2, len(enc["input_ids"]))
    assert batch["attention_mask"][1].tolist() == [1, 1] + [0] * (len(enc["input_ids"]) - 2)
    assert (batch["labels"][1, 2:] == -100).all()
    with pytest.raises(ValueError, match="batch must contain at least one example"):
        lora.collate([], 0)


def test_answer_loss_equals_the_model_loss(tiny):
    model, tok = tiny
    examples = orders.load_orders("test")[:3]
    batch = lora.collate([orders.encode_training_example(tok, e["text"], e["target"]) for e in examples], 0)
    with torch.no_grad():
        assert lora.answer_loss(model, batch).item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)


def test_train_adapter_lowers_the_loss_and_only_trains_lora(tiny):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(copy.deepcopy(tiny[0]), LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    encoded = orders.encode_examples(tiny[1], orders.load_orders("train")[:4])
    log = lora.train_adapter(model, tiny[1], encoded, steps=12, batch_size=4, lr=1e-2)
    assert len(log.losses) == 12 and log.seconds > 0
    assert log.losses[-1] < log.losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        lora.train_adapter(model, tiny[1], encoded, steps=0)
    with pytest.raises(ValueError, match="model has no trainable parameters"):
        lora.train_adapter(fixtures.tiny_model().requires_grad_(False), tiny[1], encoded, steps=1)


def test_generate_replies_returns_one_string_per_text(tiny):
    model, tok = tiny
    texts = [e["text"] for e in orders.load_orders("test")[:3]]
    replies = orders.generate_replies(model, tok, texts, max_new_tokens=4, batch_size=2)
    assert len(replies) == 3 and all(isinstance(r, str) for r in replies)
    assert tok.padding_side == "right"
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 1, got 0"):
        orders.generate_replies(model, tok, texts, max_new_tokens=0)


def test_order_lora_config_on_the_real_model_trains_under_one_percent(real):
    from peft import get_peft_model

    model = get_peft_model(copy.deepcopy(real[0]), lora.lora_config())
    trainable, total = lora.count_parameters(model)
    assert 0 < trainable / total <= 0.01
    with pytest.raises(ValueError, match=r"last_layers must be an int in \[1, 30\], got 31"):
        lora.lora_config(last_layers=31)


def test_shipped_adapter_is_small_and_reloads(real):
    from peft import PeftModel

    folder = Path(llmlab.__file__).parent / "data" / "ch05_adapter"
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size < 5e6
    model = PeftModel.from_pretrained(copy.deepcopy(real[0]), folder).eval()
    example = orders.load_orders("test")[0]
    reply = orders.generate_replies(model, real[1], [example["text"]])[0]
    assert orders.parse_json_object(reply) is not None


def test_nf4_config():
    config = lora.nf4_config()
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    with pytest.raises(TypeError, match="compute_dtype must be a floating torch.dtype"):
        lora.nf4_config(torch.int8)
    # one NF4 recipe (issue 24): QLoRA's config is quantization.bnb_config with double quantization and 16-bit compute;
    # chapter 04's load_bnb default is the same recipe with fp32 compute and no double quantization
    from llmlab.quantization.backends import bnb_config
    assert config.to_dict() == bnb_config(4, torch.bfloat16, double_quant=True).to_dict()
    plain = bnb_config(4)
    assert plain.bnb_4bit_quant_type == "nf4" and not plain.bnb_4bit_use_double_quant
    assert plain.bnb_4bit_compute_dtype == torch.float32 and bnb_config(8).load_in_8bit
    with pytest.raises(ValueError, match="bits"):
        bnb_config(3)


def test_qlora_path_on_the_tiny_model_runs_on_cpu(tmp_path, tiny):
    from peft import LoraConfig

    tiny[0].save_pretrained(tmp_path)
    tiny[1].save_pretrained(tmp_path)
    base, _ = lora.load_nf4_base(tmp_path, device="cpu")
    assert type(base.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    assert base.get_memory_footprint() < tiny[0].get_memory_footprint() / 2
    model = lora.qlora_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    ids = IDS[:1]
    model(ids, labels=ids).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_chapter_04_and_qlora_load_nf4_through_one_loader(tmp_path, tiny):
    from llmlab.quantization.backends import load_bnb

    tiny[0].save_pretrained(tmp_path)
    tiny[1].save_pretrained(tmp_path)
    plain = load_bnb(4, tmp_path, "cpu").model.layers[0].self_attn.q_proj
    qlora = lora.load_nf4_base(tmp_path, device="cpu")[0].model.layers[0].self_attn.q_proj
    assert type(plain).__name__ == type(qlora).__name__ == "Linear4bit"
    assert plain.weight.quant_state.quant_type == qlora.weight.quant_state.quant_type == "nf4"
    assert plain.weight.quant_state.nested is False and qlora.weight.quant_state.nested is True


def test_lora_parameter_counts():
    assert lora.lora_param_count(12288, 12288, r=2, n_matrices=4 * 96) == 18_874_368
    assert lora.lora_param_count(4096, 4096, r=8) == 65_536
    merged, adapters = lora.multi_tenant_params(4096, 4096, r=8, customers=100)
    assert round(merged / 1e9, 2) == 1.68 and round(adapters / 1e6, 1) == 23.3
    with pytest.raises(ValueError, match="r must be an int >= 1, got 0"):
        lora.lora_param_count(4096, 4096, 0)
    with pytest.raises(ValueError, match="customers must be an int >= 1, got 0"):
        lora.multi_tenant_params(8, 8, 2, 0)
