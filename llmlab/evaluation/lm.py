"""Language-model metrics: per-token logprobs, sequence logprob, perplexity, cross-entropy, bits per character/byte."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from llmlab import validate as V


def gather_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Float32 log softmax(logits)[target] at each position: (..., V) logits and (...) target ids -> (...).

    >>> logits = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.75]]]))
    >>> gather_logprobs(logits, torch.tensor([[0, 1]])).exp().round(decimals=4).tolist()
    [[0.5, 0.75]]
    """
    V.tensor("logits", logits, floating=True)
    V.tensor("targets", targets)
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets must have logits' leading shape {tuple(logits.shape[:-1])}, "
                         f"got {tuple(targets.shape)}")
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None].to(logits.device))[..., 0]


@torch.inference_mode()
def token_logprobs(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Logprob of each token given the ones before it, for tokens 1..n-1 of a (1, n) sequence."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1 \
            or input_ids.shape[1] < 2:
        raise ValueError(f"input_ids must be a tensor of shape (1, n) with n >= 2, got "
                         f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
    ids = input_ids.to(model.device)
    return gather_logprobs(model(ids).logits[0, :-1], ids[0, 1:]).cpu()


def text_logprobs(model, tokenizer, text: str, context: str = "") -> tuple[list[str], torch.Tensor]:
    """Tokens of `text` and their logprobs given `context` (without context the first token is not scored)."""
    V.text("text", text)
    if not isinstance(context, str):
        raise TypeError(f"context must be a str, got {type(context).__name__}")
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    scored = ids if ctx else ids[1:]
    if not scored:
        raise ValueError(f"text must have at least 2 tokens when no context is given, got {text!r}")
    lps = token_logprobs(model, torch.tensor([ctx + ids]))[-len(scored):]
    return [tokenizer.decode([i]) for i in scored], lps


def sequence_logprob(model, tokenizer, text: str, context: str = "") -> float:
    """Sum of the logprobs of `text`'s tokens (log of the sequence probability)."""
    return float(text_logprobs(model, tokenizer, text, context)[1].sum())


def perplexity_from_logprobs(logprobs: Sequence[float] | torch.Tensor) -> float:
    """exp of the mean negative logprob per token.

    >>> import math
    >>> round(perplexity_from_logprobs([math.log(0.5), math.log(0.5)]), 6)
    2.0
    """
    values = [float(v) for v in logprobs]
    if not values:
        raise ValueError("logprobs must hold at least one value, got []")
    return math.exp(-sum(values) / len(values))


@torch.inference_mode()
def perplexity(model, tokenizer, text: str, window: int = 512, max_tokens: int | None = None) -> float:
    """exp(mean negative logprob) of `text`'s tokens, scored in independent windows of `window` tokens.

    The first token of each window is context only. A text shorter than `window` is one window: its first
    token is context and every later token is scored. `max_tokens` keeps only the first tokens of the text.
    """
    V.text("text", text)
    V.integer("window", window, low=2)
    if max_tokens is not None:
        V.integer("max_tokens", max_tokens, low=2)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
    if len(ids) < 2:
        raise ValueError(f"text must have at least 2 tokens, got {len(ids)} for {text!r:.40}")
    chunks = [ids[start:start + window] for start in range(0, len(ids), window)]
    scored = [token_logprobs(model, torch.tensor([chunk])) for chunk in chunks if len(chunk) >= 2]
    return perplexity_from_logprobs(torch.cat(scored))


def cross_entropy(logprobs: Sequence[float] | torch.Tensor, base: float = math.e) -> float:
    """Mean negative logprob per token, in nats (base e) or bits (base 2); logprobs are natural logs.

    >>> import math
    >>> round(cross_entropy([math.log(0.5), math.log(0.25)], base=2), 6)
    1.5
    """
    V.number("base", base, low=1.0, low_open=True)
    values = [float(v) for v in logprobs]
    if not values:
        raise ValueError("logprobs must hold at least one value, got []")
    if any(v > 1e-6 or math.isnan(v) for v in values):
        raise ValueError(f"logprobs must be natural-log probabilities (<= 0), got max {max(values)!r}")
    return -sum(values) / len(values) / math.log(base)


def bits_per_character(bits_per_token: float, chars_per_token: float) -> float:
    """Bits per character from bits per token and the average characters per token."""
    V.number("bits_per_token", bits_per_token, low=0.0)
    V.number("chars_per_token", chars_per_token, low=0.0, low_open=True)
    return bits_per_token / chars_per_token


def bits_per_byte(bits_per_char: float, bits_per_encoded_char: float = 8.0) -> float:
    """Bits per byte from bits per character, when each character takes `bits_per_encoded_char` bits (7 for ASCII)."""
    V.number("bits_per_char", bits_per_char, low=0.0)
    V.number("bits_per_encoded_char", bits_per_encoded_char, low=0.0, low_open=True)
    return bits_per_char / (bits_per_encoded_char / 8.0)


@dataclass(frozen=True)
class TextScore:
    """How well a model predicts a text: tokens, characters and UTF-8 bytes scored, and the metrics."""

    tokens: int
    characters: int
    bytes: int
    nats_per_token: float

    @property
    def perplexity(self) -> float:
        """exp(cross-entropy in nats per token)."""
        return math.exp(self.nats_per_token)

    @property
    def bits_per_token(self) -> float:
        """Cross-entropy in bits per token."""
        return self.nats_per_token / math.log(2)

    @property
    def bits_per_character(self) -> float:
        """Total bits divided by characters scored."""
        return self.bits_per_token * self.tokens / self.characters

    @property
    def bits_per_byte(self) -> float:
        """Total bits divided by UTF-8 bytes scored (comparable across tokenizers)."""
        return self.bits_per_token * self.tokens / self.bytes


def score_text(model, tokenizer, text: str, context: str = "") -> TextScore:
    """Cross-entropy of `text` under the model, with the counts that turn it into BPC and BPB."""
    pieces, lps = text_logprobs(model, tokenizer, text, context)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    scored = text if context else tokenizer.decode(ids[1:])  # decoded together: a character may span tokens
    return TextScore(tokens=len(pieces), characters=len(scored), bytes=len(scored.encode("utf-8")),
                     nats_per_token=cross_entropy(lps))
