"""Check-can-fail tests for chapter 00's exercise checks."""

from checks_harness import CheckCase, make_tests

from llmlab import fixtures, tokens
from llmlab.checks import ch00


def count_words(tokenizer, text):
    return len(text.split())


def count_characters(tokenizer, text):
    return len(text)


def count_encoding_keys(tokenizer, text):
    return len(tokenizer(text))  # the BatchEncoding's keys, not the tokens


def argmax_first_position(logits):
    return logits[:, 0, :].argmax(dim=-1)


def argmax_probabilities_as_float(logits):
    return logits[:, -1, :].softmax(-1).max(dim=-1).values


CASES = [
    CheckCase(ch00.check_count_tokens, tokens.count_tokens, [count_words, count_characters, count_encoding_keys],
              args=(fixtures.tiny_tokenizer(),)),
    CheckCase(ch00.check_next_token_id, tokens.next_token_id, [argmax_first_position, argmax_probabilities_as_float]),
]

test_passes, test_fails_on_stub, test_fails_on_wrong = make_tests(CASES)
