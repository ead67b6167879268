"""Check-can-fail tests for chapter 00's exercise checks."""

import pytest
import torch
from checks_harness import CheckCase, make_tests

from llmlab import tokens
from llmlab.checks import CheckFailed, ch00


def merging_tokenizer():
    """A byte-level BPE tokenizer with a few hundred merges (so tokens are not bytes), trained in code."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(ch00.TEXTS * 20 + ["The weather is nice today. Hello there, world!"] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|endoftext|>")


def count_words(tokenizer, text):
    return len(text.split())


def count_characters(tokenizer, text):
    return len(text)


def count_bytes(tokenizer, text):
    return len(text.encode("utf-8"))


def count_encoding_keys(tokenizer, text):
    return len(tokenizer(text))  # the BatchEncoding's keys, not the tokens


def count_with_special_tokens(tokenizer, text):
    return len(tokenizer(text)["input_ids"])


def count_as_tensor(tokenizer, text):
    return torch.tensor(len(tokenizer(text, add_special_tokens=False)["input_ids"]))


def count_as_float(tokenizer, text):
    return float(len(tokenizer(text, add_special_tokens=False)["input_ids"]))


def count_stripped(tokenizer, text):
    return len(tokenizer(text.strip(), add_special_tokens=False)["input_ids"])  # spaces are tokens too


def count_tokenize_with_bos(tokenizer, text):
    return len(tokenizer.encode(text))  # encode adds special tokens by default


def argmax_last_row_of_batch(logits):
    return logits[-1].argmax(dim=-1)  # the last sequence's ids at every position, not every sequence's last


def argmax_without_dim(logits):
    return logits[:, -1, :].argmax()  # one index into the flattened (batch, vocab) block


def argmax_squeezed(logits):
    return logits[:, -1:, :].argmax(dim=-1).squeeze()  # a batch of one becomes a 0-d tensor


def argmax_first_position(logits):
    return logits[:, 0, :].argmax(dim=-1)


def argmax_probabilities_as_float(logits):
    return logits[:, -1, :].softmax(-1).max(dim=-1).values


def argmax_over_positions(logits):
    return logits[:, :, -1].argmax(dim=-1)


def argmax_of_flattened(logits):
    return logits.reshape(logits.shape[0], -1).argmax(dim=-1) % logits.shape[-1]


def argmax_keepdim(logits):
    return logits[:, -1, :].argmax(dim=-1, keepdim=True)


def argmax_first_sequence_only(logits):
    return logits[0, -1, :].argmax(dim=-1)


def argmax_python_list(logits):
    return logits[:, -1, :].argmax(dim=-1).tolist()


CASES = [
    CheckCase(ch00.check_count_tokens, tokens.count_tokens,
              [count_words, count_characters, count_bytes, count_encoding_keys, count_with_special_tokens,
               count_as_tensor, count_as_float, count_stripped, count_tokenize_with_bos], args=(merging_tokenizer(),)),
    CheckCase(ch00.check_next_token_id, tokens.next_token_id,
              [argmax_first_position, argmax_probabilities_as_float, argmax_over_positions, argmax_of_flattened,
               argmax_keepdim, argmax_first_sequence_only, argmax_python_list, argmax_last_row_of_batch,
               argmax_without_dim, argmax_squeezed]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)


def test_count_tokens_names_the_bos_token():
    with pytest.raises(CheckFailed, match="BOS"):
        ch00.check_count_tokens(count_with_special_tokens, merging_tokenizer())
