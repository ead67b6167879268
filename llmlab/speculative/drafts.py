"""Drafters: a small model with its own KV cache (optionally a reduced-vocabulary head), prompt lookup, early exit.

A drafter is told the prompt (start), proposes up to γ tokens after the committed tokens (propose), and forgets
whatever the target rejected (commit). propose returns the tokens and the draft distributions q (γ, vocab) they
were sampled from, or None when the tokens were chosen deterministically (greedy, n-gram lookup): then q is one-hot.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Protocol

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights, forward, input_major
from llmlab.kv_cache import KVCache
from llmlab.sampling import NEG_INF, SamplingSettings, process_logits


class Drafter(Protocol):
    """What the speculative loop needs from a draft.

    A draft with reads_features = True (FeatureDraft) is also given the target's final-norm hidden states: to
    start, those of the prompt but its last token; to commit, those of the committed positions the verify pass
    computed. Other drafts are called without them.
    """

    kind: str

    def start(self, prompt: list[int], capacity: int) -> None:
        """Prepare for a new generation after `prompt` (token ids)."""

    def propose(self, tokens: list[int], gamma: int, settings: SamplingSettings,
                generator: torch.Generator) -> tuple[list[int], torch.Tensor | None]:
        """Up to gamma draft tokens after `tokens`, and their distributions q (len, vocab) or None (one-hot)."""

    def commit(self, length: int) -> None:
        """The first `length` tokens are final; forget anything computed past them."""


def full_vocab_logits(logits: torch.Tensor, vocab_ids: torch.Tensor | None, vocab_size: int) -> torch.Tensor:
    """Logits (..., vocab_size) from reduced-vocabulary logits (..., len(vocab_ids)); -inf outside vocab_ids."""
    if vocab_ids is None:
        return logits
    out = torch.full((*logits.shape[:-1], vocab_size), NEG_INF, dtype=logits.dtype, device=logits.device)
    return out.index_copy_(-1, vocab_ids, logits)


def pick(logits: torch.Tensor, settings: SamplingSettings, history: list[int],
         generator: torch.Generator) -> tuple[int, torch.Tensor | None]:
    """One token from 1-d logits (vocab,) under settings, and the probabilities it was drawn from (None if greedy)."""
    if settings.greedy and settings.repetition_penalty == 1:
        return int(logits.argmax()), None
    ids = torch.tensor([history], device=logits.device) if settings.repetition_penalty != 1 else None
    processed = process_logits(logits[None].float(), settings, ids)[0]
    if settings.greedy:
        return int(processed.argmax()), None
    probs = processed.softmax(-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator)), probs


def roll_out(logits: torch.Tensor, advance: Callable[[int], torch.Tensor], gamma: int, settings: SamplingSettings,
             history: list[int], generator: torch.Generator, vocab_ids: torch.Tensor | None, vocab_size: int,
             to_token: Callable[[int], int]) -> tuple[list[int], torch.Tensor | None]:
    """gamma draft tokens from a (reduced-vocabulary) draft's logits, advance(token) giving the next logits; and
    their full-vocabulary distributions when sampling (None when greedy)."""
    out: list[int] = []
    dists: list[torch.Tensor] = []
    fast = settings.greedy and settings.repetition_penalty == 1
    for i in range(gamma):
        if fast:
            token = to_token(int(logits.argmax()))
        else:
            full = full_vocab_logits(logits, vocab_ids, vocab_size)
            token, probs = pick(full, settings, history + out, generator)
            if probs is not None:
                dists.append(probs)
        out.append(token)
        if i + 1 < gamma:
            logits = advance(token)
    return out, (torch.stack(dists) if dists else None)


def checked_vocab_ids(vocab_ids: torch.Tensor | None, weights: LlamaWeights) -> torch.Tensor | None:
    """A reduced head's row -> token id map, checked against the head and the vocabulary, on the weights' device."""
    if vocab_ids is None:
        return None
    validate.tensor("vocab_ids", vocab_ids, dims=1)
    if vocab_ids.shape[0] != weights.lm_head.shape[0]:
        raise ValueError(f"vocab_ids must have one id per output row ({weights.lm_head.shape[0]}), "
                         f"got {vocab_ids.shape[0]}")
    if int(vocab_ids.max()) >= weights.vocab_size or int(vocab_ids.min()) < 0:
        raise ValueError(f"vocab_ids must be in [0, {weights.vocab_size - 1}], got "
                         f"[{int(vocab_ids.min())}, {int(vocab_ids.max())}]")
    return vocab_ids.to(weights.embed.device, torch.long)


class ReducedHead:
    """What every trained draft shares: its weights, and vocab_ids mapping a reduced head's rows to token ids."""

    weights: LlamaWeights
    vocab_ids: torch.Tensor | None

    @property
    def vocab_size(self) -> int:
        """Size of the token vocabulary the draft reads and writes."""
        return self.weights.vocab_size

    @property
    def device(self) -> torch.device:
        """Where the draft's weights live."""
        return self.weights.embed.device

    def _token(self, index: int) -> int:
        """Token id of output row `index`."""
        return index if self.vocab_ids is None else int(self.vocab_ids[index])


class ModelDraft(ReducedHead):
    """A small Llama (LlamaWeights) proposing tokens with its own KV cache, rolled back on rejection.

    vocab_ids (k,) maps the rows of a reduced output head to token ids: the head then costs k/vocab of a full one.
    """

    kind = "model"

    def __init__(self, weights: LlamaWeights, vocab_ids: torch.Tensor | None = None, tokenizer=None,
                 name: str = "draft model"):
        if not isinstance(weights, LlamaWeights):
            raise TypeError(f"weights must be llmlab.attention.LlamaWeights (attention.from_model(model)), "
                            f"got {type(weights).__name__}")
        vocab_ids = checked_vocab_ids(vocab_ids, weights)
        self.weights, self.vocab_ids, self.tokenizer, self.name = weights, vocab_ids, tokenizer, name
        self.cache: KVCache | None = None
        self.passes = 0

    def _logits(self, feed: list[int]) -> torch.Tensor:
        """Last-position logits (head size,) after feeding tokens through the cache."""
        self.passes += 1
        ids = torch.tensor([feed], device=self.device)
        return forward(self.weights, ids, self.cache)[0, -1]

    def start(self, prompt: list[int], capacity: int) -> None:
        """Fresh cache; prefill all prompt tokens but the last (propose feeds it)."""
        self.cache = KVCache.for_weights(self.weights, 1, capacity)
        self.passes = 0
        if len(prompt) > 1:
            forward(self.weights, torch.tensor([prompt[:-1]], device=self.device), self.cache)

    def propose(self, tokens: list[int], gamma: int, settings: SamplingSettings,
                generator: torch.Generator) -> tuple[list[int], torch.Tensor | None]:
        """gamma tokens, each from the draft's distribution given everything before it."""
        return roll_out(self._logits(tokens[self.cache.length:]), lambda token: self._logits([token]), gamma,
                        settings, tokens, generator, self.vocab_ids, self.vocab_size, self._token)

    def commit(self, length: int) -> None:
        """Roll the cache back to at most `length` positions."""
        self.cache.truncate(min(length, self.cache.length))


def reduced_head(weights: LlamaWeights, vocab_ids: torch.Tensor) -> LlamaWeights:
    """The same weights with an output head over vocab_ids (k,) only: rows of the full head, input-major."""
    validate.tensor("vocab_ids", vocab_ids, dims=1)
    rows = weights.lm_head.index_select(0, vocab_ids.to(weights.lm_head.device, torch.long))
    head = input_major(rows)
    return replace(weights, lm_head=head, head_rows=(head, rows))


def early_exit(weights: LlamaWeights, layers: int) -> LlamaWeights:
    """Self-speculation draft: the target's first `layers` layers, its final norm and head (shared tensors)."""
    validate.integer("layers", layers, low=1, high=weights.num_layers)
    return replace(weights, layers=weights.layers[:layers])


class NgramDraft:
    """Prompt lookup: find the latest earlier occurrence of the last n tokens and propose what followed it.

    No model at all (Saxena 2023, transformers' prompt_lookup_num_tokens): strong when the answer copies from the
    prompt (summaries, code edits), useless on free text.
    """

    kind = "ngram"

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1):
        validate.positive_int("min_ngram", min_ngram)
        validate.integer("max_ngram", max_ngram, low=min_ngram)
        self.max_ngram, self.min_ngram, self.passes = max_ngram, min_ngram, 0
        self.name = f"prompt lookup ({min_ngram}..{max_ngram}-grams)"

    def start(self, prompt: list[int], capacity: int) -> None:
        """Nothing to prepare."""

    def propose(self, tokens: list[int], gamma: int, settings: SamplingSettings,
                generator: torch.Generator) -> tuple[list[int], torch.Tensor | None]:
        """Tokens that followed the latest earlier match of the longest suffix n-gram (q is one-hot)."""
        return lookup(tokens, gamma, self.max_ngram, self.min_ngram), None

    def commit(self, length: int) -> None:
        """Nothing cached."""


def lookup(tokens: list[int], gamma: int, max_ngram: int = 3, min_ngram: int = 1) -> list[int]:
    """Up to gamma tokens that followed the latest earlier occurrence of tokens' last n tokens (n = max..min)."""
    size = len(tokens)
    for n in range(min(max_ngram, size - 1), min_ngram - 1, -1):
        suffix = tokens[size - n:]
        for start in range(size - n - 1, -1, -1):
            if tokens[start:start + n] == suffix:
                return tokens[start + n:start + n + gamma]
    return []
