"""Tests for llmlab.posttraining: masking, sequence logprobs, the DPO loss (vs TRL), KL, reward model, judge."""

from __future__ import annotations

import copy
import tempfile

import pytest
import torch

from llmlab import evaluation, models
from llmlab import posttraining as pt
from llmlab.kit import fixtures
from llmlab.tasks import facts

PAIRS = facts.load_preferences("train")[:4]


def perturbed(model, scale: float = 0.05, seed: int = 1):
    """A copy of the model with every weight nudged: a reference that differs from the policy."""
    return fixtures.perturbed(model, scale, seed)


def test_log_sigmoid_is_stable_and_exact():
    x = torch.tensor([-1000.0, -30.0, -1.0, 0.0, 2.0, 40.0, 1000.0])
    got = pt.log_sigmoid(x)
    torch.testing.assert_close(got, torch.nn.functional.logsigmoid(x))
    assert torch.isfinite(got).all()


def test_encode_response_masks_the_prompt(tiny):
    _, tok = tiny
    enc = pt.encode_response(tok, "What is 2 plus 2?", "2 plus 2 is 4.")
    n_prompt = sum(label == -100 for label in enc["labels"])
    prompt_text = tok.decode(enc["input_ids"][:n_prompt])
    answer_text = tok.decode([t for t in enc["labels"] if t != -100])
    assert prompt_text.endswith("<|im_start|>assistant\n") and "2 plus 2 is 4." in answer_text
    assert answer_text.startswith("2 plus 2 is 4.<|im_end|>")


def test_preference_batch_layout(tiny):
    _, tok = tiny
    batch = pt.preference_batch(tok, PAIRS)
    assert batch["input_ids"].shape[0] == 2 * len(PAIRS)
    assert (batch["completion_mask"] <= batch["attention_mask"]).all()
    first = tok.decode(batch["input_ids"][0][batch["completion_mask"][0].bool()])
    last = tok.decode(batch["input_ids"][len(PAIRS)][batch["completion_mask"][len(PAIRS)].bool()])
    assert first.startswith(PAIRS[0]["chosen"]) and last.startswith(PAIRS[0]["rejected"])


def test_sequence_logprobs_match_evaluation_token_logprobs(tiny):
    model, tok = tiny
    batch = pt.preference_batch(tok, PAIRS[:2])
    got = pt.sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    for row in range(4):
        n = int(batch["attention_mask"][row].sum())
        lps = evaluation.token_logprobs(model, batch["input_ids"][row:row + 1, :n])
        mask = batch["completion_mask"][row, 1:n].bool()
        torch.testing.assert_close(got[row], lps[mask].sum(), atol=1e-4, rtol=1e-5)
    mean = pt.sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"],
                                average=True)
    torch.testing.assert_close(mean, got / batch["completion_mask"][:, 1:].sum(1))


def test_dpo_loss_formula_and_rewards():
    pc, pr = torch.tensor([-10.0, -12.0]), torch.tensor([-14.0, -11.0])
    rc, rr = torch.tensor([-11.0, -12.5]), torch.tensor([-13.0, -11.5])
    out = pt.dpo_loss(pc, pr, rc, rr, beta=0.5)
    margin = 0.5 * ((pc - rc) - (pr - rr))
    torch.testing.assert_close(out.loss, -torch.nn.functional.logsigmoid(margin).mean())
    torch.testing.assert_close(out.margins, margin)
    torch.testing.assert_close(out.chosen_rewards, 0.5 * (pc - rc))
    same = pt.dpo_loss(pc, pr, pc, pr, beta=0.1)
    assert same.loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_dpo_loss_is_finite_for_huge_margins():
    big = torch.tensor([-1e4])
    out = pt.dpo_loss(big * 0, big, big * 0, big * 0, beta=1.0)
    assert torch.isfinite(out.loss) and out.loss.item() == pytest.approx(0.0, abs=1e-6)
    out = pt.dpo_loss(big, big * 0, big * 0, big * 0, beta=1.0)
    assert out.loss.item() == pytest.approx(1e4, rel=1e-6)


def test_dpo_loss_matches_trl_dpo_trainer_on_the_same_batch(tiny):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    ref = perturbed(model)
    rows = [{"prompt": [{"role": "user", "content": p["prompt"]}],
             "chosen": [{"role": "assistant", "content": p["chosen"]}],
             "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in PAIRS]
    args = DPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=len(PAIRS), beta=0.2,
                     max_length=None, report_to=[], use_cpu=True)
    trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch)
        ours_on_trl_batch = pt.dpo_batch_loss(model, batch, beta=0.2, reference=ref)
        ours = pt.dpo_batch_loss(model, pt.preference_batch(tok, PAIRS), beta=0.2, reference=ref)
    assert abs(ours_on_trl_batch.loss.item() - trl_loss.item()) < 1e-5
    assert abs(ours.loss.item() - trl_loss.item()) < 1e-5  # our own tokenization and masking give the same loss
    logged = trainer._metrics["train"] or trainer._metrics["eval"]  # TRL's own record of this batch
    margins = logged["rewards/margins"][-1]
    assert ours.margins.mean().item() == pytest.approx(margins, abs=1e-5)
    assert abs(ours.loss.item() - 0.6931) > 1e-3  # the reference differs, so the ratio matters


def test_dpo_batch_loss_with_peft_uses_the_disabled_adapter_as_reference(tiny):
    from peft import LoraConfig, get_peft_model

    model, tok = copy.deepcopy(tiny[0]), tiny[1]
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    batch = pt.preference_batch(tok, PAIRS[:2])
    out = pt.dpo_batch_loss(peft_model, batch, beta=0.1)
    assert out.loss.item() == pytest.approx(0.6931472, abs=1e-5)  # LoRA B = 0: policy == reference
    out.loss.backward()
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert pt.response_kl(peft_model, batch) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        pt.dpo_batch_loss(tiny[0], batch)


def test_response_kl_is_positive_for_a_different_reference(tiny):
    model, tok = tiny
    batch = pt.preference_batch(tok, PAIRS[:2])
    assert pt.response_kl(model, batch, reference=perturbed(model)) > 0


def test_bradley_terry_loss():
    c, r = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.0, 1.0])
    expected = -torch.nn.functional.logsigmoid(c - r).mean()
    torch.testing.assert_close(pt.bradley_terry_loss(c, r), expected)


def test_reward_head_learns_a_separable_preference():
    gen = torch.Generator().manual_seed(0)
    direction = torch.randn(16, generator=gen)
    x = torch.randn(200, 16, generator=gen) * 3 + 5
    chosen, rejected = x[:100] + 0.3 * direction, x[:100] + torch.randn(100, 16, generator=gen) * 0.1
    head, losses = pt.train_reward_head(chosen[:80], rejected[:80], steps=200, lr=0.05)
    assert losses[-1] < losses[0] < 0.7
    assert pt.pairwise_accuracy(head, chosen[80:], rejected[80:]) > 0.9  # held out; raw (unstandardized) features


def test_response_features_pick_the_last_real_token(tiny):
    model, tok = tiny
    prompts, responses = ["Hi?", "What is 2 plus 2?"], ["Hello.", "It is 4, and that is a longer reply."]
    feats = pt.response_features(model, tok, prompts, responses, batch_size=2)
    alone = pt.response_features(model, tok, prompts[:1], responses[:1])
    assert feats.shape == (2, model.config.hidden_size)
    torch.testing.assert_close(feats[0], alone[0], atol=1e-5, rtol=1e-4)
    enc = pt.encode_response(tok, prompts[1], responses[1])
    with torch.no_grad():  # the full model's last (final-normed) hidden state at the last token: what the head reads
        full = model(input_ids=torch.tensor([enc["input_ids"]]), output_hidden_states=True).hidden_states[-1][0, -1]
    torch.testing.assert_close(feats[1], full.float(), atol=1e-5, rtol=1e-4)


def test_judge_and_win_rate():
    assert pt.judge_reply("The capital of Peru is Lima.", "Lima") == 2
    assert pt.judge_reply("The capital of Peru is Limassol.", "Lima") == 1
    assert pt.judge_reply("12 plus 30 is 42.", "42") == 2 and pt.judge_reply("It is 420.", "42") == 1
    assert pt.judge_reply(" ".join(["Lima"] + ["word"] * 30), "Lima") == 1
    assert pt.judge_reply("", "Lima") == 0
    assert pt.judge_reply("It is 4.2.", "42") == 1 and pt.judge_reply("It is 3.90 euros.", "3.90") == 2
    assert pt.pairwise_outcomes([2, 1, 0], [1, 1, 2]) == [1.0, 0.5, 0.0]


def test_chat_replies_batched_equals_one_by_one(tiny):
    model, tok = tiny
    prompts = ["Hi?", "What is the capital of a country?"]
    together = pt.chat_replies(model, tok, prompts, max_new_tokens=4, batch_size=2)
    alone = [pt.chat_replies(model, tok, [p], max_new_tokens=4)[0] for p in prompts]
    assert together == alone


@pytest.mark.parametrize("call,err", [
    (lambda: pt.dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=0), ValueError),
    (lambda: pt.dpo_loss(torch.zeros(2), torch.zeros(3), torch.zeros(2), torch.zeros(2)), ValueError),
    (lambda: pt.bradley_terry_loss(torch.zeros(2), torch.zeros(3)), ValueError),
    (lambda: pt.log_sigmoid([1.0]), TypeError),
    (lambda: pt.judge_reply("x", "y", max_words=0), ValueError),
    (lambda: facts.load_preferences("dev"), ValueError),
])
def test_bad_input(call, err):
    with pytest.raises(err):
        call()


def test_shipped_adapter_loads_and_has_a_log():
    import json
    from importlib import resources

    folder = resources.files("llmlab.data") / "ch12_dpo_adapter"
    log = json.loads((folder / "train_log.json").read_text(encoding="utf-8"))
    assert log["steps"] >= 4 and len([h for h in log["history"] if "kl" in h]) >= 2
    assert (folder / "adapter_model.safetensors").stat().st_size < 8e6
    assert models.DEFAULT_MODEL in (folder / "adapter_config.json").read_text(encoding="utf-8")
