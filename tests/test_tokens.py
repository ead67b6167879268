"""Token counting, next-token distributions and the stable log-softmax."""

from __future__ import annotations

import pytest
import torch

from llmlab import tokens


def test_count_tokens_and_pieces(tiny):
    _, tokenizer = tiny
    assert tokens.count_tokens(tokenizer, "héllo") == 6  # byte-level: é is 2 bytes
    assert "".join(tokens.token_pieces(tokenizer, "hello")) == "hello"
    with pytest.raises(TypeError, match="text must be a str, got int"):
        tokens.token_pieces(tokenizer, 3)


def test_next_token_id_and_top_tokens(tiny):
    _, tokenizer = tiny
    logits = torch.zeros(2, 3, 5)
    logits[:, -1, 4] = 1.0
    assert tokens.next_token_id(logits).tolist() == [4, 4]
    probs = torch.tensor([0.1, 0.6, 0.3])
    assert [p for _, p in tokens.top_tokens(probs, tokenizer, k=2)] == pytest.approx([0.6, 0.3])
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 3\], got 4"):
        tokens.top_tokens(probs, tokenizer, k=4)


def test_log_softmax_is_stable_and_matches_torch():
    x = torch.tensor([[1000.0, 999.0, -5.0], [0.1, 0.2, 0.3]])
    got = tokens.log_softmax(x)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, torch.log_softmax(x, -1), atol=1e-6)
    with pytest.raises(TypeError, match="logits must be a floating torch.Tensor"):
        tokens.log_softmax(torch.tensor([1, 2]))


def test_next_token_distributions_agree(tiny):
    model, tokenizer = tiny
    probs = tokens.next_token_probs(model, tokenizer, "hi", chat=False)
    logprobs = tokens.next_token_logprobs(model, tokenizer, "hi", chat=False)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(logprobs.exp(), probs, atol=1e-6)
    got = tokens.option_probs(model, tokenizer, "hi", ["a", "b"])
    assert got == pytest.approx({"a": probs[tokenizer.convert_tokens_to_ids("a")].item(),
                                 "b": probs[tokenizer.convert_tokens_to_ids("b")].item()})
    with pytest.raises(ValueError, match=r"options must be a non-empty list of non-empty str, got \[\]"):
        tokens.option_probs(model, tokenizer, "hi", [])
    with pytest.raises(ValueError, match="prompt must be a non-empty str, got ''"):
        tokens.encode_prompt(tokenizer, "")


def test_generate_batch_is_the_one_left_padded_batcher(tiny):
    # issue 24: orders.generate_replies, posttraining.chat_replies and data_engineering.generate_synthetic all batch
    # through tokens.generate_batch; a left-padded batch gives the replies each prompt gets alone
    from llmlab import posttraining
    from llmlab.tasks import orders

    model, tok = tiny
    tok.padding_side = "right"
    prompts = ["Hi?", "What is the capital of a country far away?", "2+2"]
    together = tokens.generate_batch(model, tok, prompts, max_new_tokens=4, batch_size=3)
    assert together == [tokens.generate_batch(model, tok, [p], max_new_tokens=4)[0] for p in prompts]
    assert tok.padding_side == "right"
    assert posttraining.chat_replies(model, tok, prompts, max_new_tokens=4) == [r.strip() for r in together]
    texts = ["two red mugs", "one blue kettle please"]
    messages = [orders.order_messages(t) for t in texts]
    assert orders.generate_replies(model, tok, texts, max_new_tokens=4) == \
        [r.strip() for r in tokens.generate_batch(model, tok, messages, max_new_tokens=4)]
    raw = tokens.generate_batch(model, tok, ["Once upon a"], max_new_tokens=3, chat=False)
    ids = tok("Once upon a", return_tensors="pt", add_special_tokens=False)["input_ids"]
    want = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                          pad_token_id=tokens.pad_token_id(tok))
    assert raw == [tok.decode(want[0, ids.shape[1]:], skip_special_tokens=True)]
    with pytest.raises(ValueError, match="prompts must have at least one item"):
        tokens.generate_batch(model, tok, [])


def test_sft_example_learns_only_the_reply_turn_with_its_end_of_turn():
    from llmlab.kit import fixtures
    from llmlab.tasks import orders

    tok = fixtures.tiny_tokenizer()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    enc = tokens.sft_example(tok, messages, "Hello.")
    learned = [t for t in enc["labels"] if t != tokens.IGNORE_INDEX]
    assert tok.decode(learned) == "Hello.<|im_end|>\n"  # the template's own end of turn, nothing hard-coded
    assert len(enc["labels"]) == len(enc["input_ids"]) and enc["input_ids"][-len(learned):] == learned
    example = orders.load_orders("test")[0]
    assert orders.encode_training_example(tok, example["text"], example["target"]) == tokens.sft_example(
        tok, orders.order_messages(example["text"]), orders.target_json(example["target"]))
    with pytest.raises(ValueError, match="messages must have at least one item"):
        tokens.sft_example(tok, [], "Hello.")
    with pytest.raises(TypeError, match="response must be a str"):
        tokens.sft_example(tok, messages, None)
