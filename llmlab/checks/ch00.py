"""Checks for chapter 00 (setup and tour) exercises."""

from __future__ import annotations

import torch

from llmlab.checks import Check

TEXTS = ["Hello world", "The capital of France is Paris.", "naïve café — déjà vu", "数学很有趣", "  spaced   out  "]


def check_count_tokens(count_tokens, tokenizer) -> None:
    """Exercise 00.1: count_tokens(tokenizer, text) returns the number of tokens, no special tokens."""
    with Check("Exercise 00.1 count_tokens") as c:
        for text in TEXTS:
            expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            got = c.call(count_tokens, tokenizer, text, case=repr(text))
            c.that(isinstance(got, int), repr(text), f"expected an int, got {type(got).__name__}")
            c.equal(got, expected, case=repr(text))
        got = c.call(count_tokens, tokenizer, "", case="empty text")
        c.equal(got, 0, case="empty text")


def check_next_token_id(next_token_id) -> None:
    """Exercise 00.2: next_token_id(logits) returns the argmax at the last position for each sequence."""
    gen = torch.Generator().manual_seed(0)
    with Check("Exercise 00.2 next_token_id") as c:
        for batch, seq, vocab in [(1, 1, 5), (1, 4, 10), (3, 6, 50)]:
            logits = torch.randn(batch, seq, vocab, generator=gen)
            case = f"logits of shape {(batch, seq, vocab)}"
            got = c.call(next_token_id, logits.clone(), case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(not got.is_floating_point(), case, f"expected integer token ids, got dtype {got.dtype}")
            c.close(got, logits[:, -1, :].argmax(dim=-1), case=case, atol=0, rtol=0)
        logits = torch.zeros(2, 3, 4)
        logits[:, 0, 1] = 9.0  # a decoy: the first position prefers token 1
        logits[:, -1, 3] = 5.0
        got = c.call(next_token_id, logits, case="decoy at the first position")
        c.close(got, torch.tensor([3, 3]), case="decoy at the first position", atol=0, rtol=0)
