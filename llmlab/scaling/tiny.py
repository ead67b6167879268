"""Tiny byte-level decoders trained on this CPU, built from the kit's own transformer block (attention.forward)."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from llmlab import attention, validate
from llmlab.attention import LlamaWeights
from llmlab.kit import fixtures

BYTE_VOCAB = 256
Forward = Callable[[LlamaWeights, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TinySpec:
    """The shape of a tiny decoder: layers, width, heads, MLP width and longest position (byte vocabulary)."""

    layers: int = 2
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    inner: int = 128
    max_positions: int = 512


def corpus_text() -> str:
    """The English text the kit ships (chapter 04's evaluation text, chapter 11's documents, chapter 12's corpus)."""
    data = resources.files("llmlab.data")
    parts = [data.joinpath("ch04_eval_text.txt").read_text(encoding="utf-8")]
    for name, key in [("ch11_docs.jsonl", "text"), ("ch12_corpus.jsonl", "response")]:
        for line in data.joinpath(name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                parts.append(str(row.get(key) or next(iter(row.values()))))
    return "\n".join(parts)


def byte_tokens(text: str) -> torch.Tensor:
    """The UTF-8 bytes of a text as a 1-D int64 tensor (a 256-symbol vocabulary, no tokenizer to train)."""
    validate.text("text", text)
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def split_tokens(tokens: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation): the last val_fraction of the stream is held out, so no window spans both."""
    validate.tensor("tokens", tokens, dims=1)
    validate.number("val_fraction", val_fraction, low=0.0, high=0.5, low_open=True)
    cut = int(len(tokens) * (1 - val_fraction))
    return tokens[:cut], tokens[cut:]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: tiny matrices cost more to split across cores than to compute."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_weights(spec: TinySpec = TinySpec(), seed: int = 0) -> LlamaWeights:
    """A randomly initialised tiny decoder as LlamaWeights whose tensors are trainable leaves."""
    if not isinstance(spec, TinySpec):
        raise TypeError(f"spec must be a TinySpec, got {type(spec).__name__}")
    model = fixtures.tiny_model(seed=seed, vocab_size=BYTE_VOCAB, hidden_size=spec.hidden, num_layers=spec.layers,
                                num_heads=spec.heads, num_kv_heads=spec.kv_heads, intermediate_size=spec.inner)
    w = attention.load_weights(model.state_dict(), model.config, spec.max_positions)
    w.head_rows = None
    for t in trainable(w):
        t.requires_grad_(True)
    return w


def trainable(w: LlamaWeights) -> list[torch.Tensor]:
    """The tensors training updates: embedding (tied to the output head), every layer's weights, the final norm."""
    tensors = [w.embed, w.final_norm] + [t for layer in w.layers for t in vars(layer).values()]
    if w.lm_head is not w.embed and w.lm_head.data_ptr() != w.embed.data_ptr():
        tensors.append(w.lm_head)
    return tensors


def tie_head(w: LlamaWeights) -> LlamaWeights:
    """Point the output head at the embedding (tied weights share one trainable tensor)."""
    w.lm_head, w.head_rows = w.embed, None
    return w


def batch_at(tokens: torch.Tensor, starts: torch.Tensor, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, seq) and next-token targets (batch, seq) for windows starting at `starts`."""
    idx = starts[:, None] + torch.arange(seq + 1)[None, :]
    window = tokens[idx]
    return window[:, :-1], window[:, 1:]


def lm_loss(w: LlamaWeights, x: torch.Tensor, y: torch.Tensor, forward: Forward = attention.forward) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of the model on inputs x and targets y, both (batch, seq)."""
    logits = forward(w, x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))


def train(w: LlamaWeights, tokens: torch.Tensor, steps: int, batch: int = 16, seq: int = 64, lr: float = 3e-3,
          seed: int = 0, forward: Forward = attention.forward, extra_loss: Callable[[], torch.Tensor] | None = None
          ) -> list[float]:
    """Train in place with AdamW (warmup, then cosine decay to 10%); returns the loss of every step."""
    validate.positive_int("steps", steps)
    validate.positive_int("batch", batch)
    validate.integer("seq", seq, low=1, high=w.max_positions - 1)
    validate.tensor("tokens", tokens, dims=1)
    if len(tokens) <= seq + 1:
        raise ValueError(f"tokens must hold more than seq + 1 = {seq + 1} tokens, got {len(tokens)}")
    tie_head(w)
    params = trainable(w)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    with one_thread():
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr * lr_scale(step, steps)
            x, y = batch_at(tokens, torch.randint(0, len(tokens) - seq - 1, (batch,), generator=gen), seq)
            loss = lm_loss(w, x, y, forward)
            opt.zero_grad(set_to_none=True)
            (loss + extra_loss() if extra_loss is not None else loss).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(loss.item())
    return losses


def lr_scale(step: int, steps: int) -> float:
    """The learning-rate multiplier at `step`: linear warmup over the first 10%, then cosine decay to 0.1."""
    warmup = max(1, steps // 10)
    if step < warmup:
        return (step + 1) / warmup
    return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


@torch.no_grad()
def eval_loss(w: LlamaWeights, tokens: torch.Tensor, seq: int = 64, batches: int = 8, batch: int = 16,
              forward: Forward = attention.forward) -> float:
    """Mean next-token loss (nats) over evenly spaced windows of a held-out stream (the same windows every call)."""
    validate.tensor("tokens", tokens, dims=1)
    n = batches * batch
    if len(tokens) <= seq + 1:
        raise ValueError(f"tokens must hold more than seq + 1 = {seq + 1} tokens, got {len(tokens)}")
    starts = torch.linspace(0, len(tokens) - seq - 2, n).long()
    with one_thread():
        return sum(lm_loss(w, *batch_at(tokens, s, seq), forward).item() for s in starts.split(batch)) / batches
