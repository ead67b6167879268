"""Checks for chapter 00 (setup and tour) exercises."""

from __future__ import annotations

import torch

from llmlab.checks import Check

TEXTS = ["Hello world", "The capital of France is Paris.", "naïve café — déjà vu", "数学很有趣", "  spaced   out  "]


class _AddsBos:
    """The given tokenizer, changed to put a BOS token first by default (as Llama 2's and Gemma's do)."""

    def __init__(self, tokenizer, bos_id: int):
        self._tok, self.bos_token_id = tokenizer, bos_id

    def __call__(self, text, add_special_tokens: bool = True, **kwargs):
        out = self._tok(text, add_special_tokens=False, **kwargs)
        if add_special_tokens:
            out["input_ids"] = [self.bos_token_id] + list(out["input_ids"])
            if "attention_mask" in out:
                out["attention_mask"] = [1] + list(out["attention_mask"])
        return out

    def encode(self, text, add_special_tokens: bool = True, **kwargs):
        return self(text, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def __getattr__(self, name):
        return getattr(self._tok, name)


def check_count_tokens(count_tokens, tokenizer) -> None:
    """Exercise 00.1: count_tokens(tokenizer, text) is the number of tokens of text itself (no BOS/EOS), an int."""
    with_bos = _AddsBos(tokenizer, tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0)
    with Check("Exercise 00.1 count_tokens") as c:
        for text in TEXTS:
            expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            for label, tok in [("this tokenizer", tokenizer), ("a tokenizer that adds a BOS token", with_bos)]:
                case = f"{text!r} with {label}"
                got = c.call(count_tokens, tok, text, case=case)
                c.that(isinstance(got, int) and not isinstance(got, bool), case,
                       f"expected a Python int, got {type(got).__name__}")
                if tok is with_bos and got == expected + 1:
                    c.fail(case, f"expected {expected}, got {got}: you counted the BOS token the tokenizer adds; "
                                 "pass add_special_tokens=False")
                c.equal(got, expected, case=case)
        got = c.call(count_tokens, tokenizer, "", case="empty text")
        c.equal(got, 0, case="empty text")


def check_next_token_id(next_token_id) -> None:
    """Exercise 00.2: next_token_id(logits) returns the argmax at the last position for each sequence."""
    gen = torch.Generator().manual_seed(0)
    with Check("Exercise 00.2 next_token_id") as c:
        for batch, seq, vocab in [(1, 1, 5), (1, 4, 10), (3, 6, 50), (2, 7, 5)]:
            logits = torch.randn(batch, seq, vocab, generator=gen)
            case = f"logits of shape {(batch, seq, vocab)}"
            got = c.call(next_token_id, logits.clone(), case=case)
            c.that(isinstance(got, torch.Tensor), case, f"expected a torch.Tensor, got {type(got).__name__}")
            c.that(not got.is_floating_point(), case,
                   f"expected integer token ids (argmax, not the max value), got dtype {got.dtype}")
            c.that(tuple(got.shape) == (batch,), case,
                   f"expected one id per sequence, shape {(batch,)}, got shape {tuple(got.shape)}")
            c.close(got, logits[:, -1, :].argmax(dim=-1), case=case, atol=0, rtol=0)
        logits = torch.zeros(2, 3, 4)
        logits[:, 0, 1] = 9.0  # a decoy: the first position prefers token 1
        logits[:, -1, 3] = 5.0
        got = c.call(next_token_id, logits, case="decoy at the first position")
        c.close(got, torch.tensor([3, 3]), case="decoy at the first position", atol=0, rtol=0)
