"""Logit lens: read every layer's residual stream through the final norm and the output head.

Mind the offsets of transformers' ``output_hidden_states``: entry 0 is the embeddings, entry i the output of
decoder layer i, and for Llama models the LAST entry already has the final norm applied. ``residual_stream``
returns the un-normed stream for every entry, so one rule (norm, then head) holds for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from llmlab import validate
from llmlab.interpret._common import check_layer, encode, target_ids, token_texts


def _final_norm(model):
    """The model's final norm module (model.model.norm for Llama-style models)."""
    return model.get_decoder().norm


def residual_stream(model, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The residual stream before the final norm, (layers + 1, batch, seq, hidden): [0] embeddings, [i] layer i."""
    validate.token_ids("ids", ids)
    captured: list[torch.Tensor] = []
    hook = _final_norm(model).register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        out = model(input_ids=ids.to(model.device), attention_mask=attention_mask, output_hidden_states=True)
    finally:
        hook.remove()
    return torch.stack(list(out.hidden_states[:-1]) + [captured[-1]])


def lens_logits(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logits (..., vocab) the model would output if the residual stream `hidden` (..., hidden) were its last."""
    validate.float_tensor("hidden", hidden)
    return model.get_output_embeddings()(_final_norm(model)(hidden))


@dataclass
class LensResult:
    """A logit lens over one prompt: top token and its probability per (layer, position), full last position."""

    tokens: list[str]             # the prompt's tokens, seq of them
    top_ids: torch.Tensor         # (layers + 1, seq) argmax token id read at each layer and position
    top_probs: torch.Tensor       # (layers + 1, seq) its probability
    last_probs: torch.Tensor      # (layers + 1, vocab) the next-token distribution at the last position

    @property
    def num_layers(self) -> int:
        """Number of decoder layers (rows are layers + 1: row 0 is the embeddings)."""
        return self.top_ids.shape[0] - 1

    def target_probability(self, token_id: int) -> torch.Tensor:
        """Probability of `token_id` as the next token, read at every layer: (layers + 1,)."""
        validate.integer("token_id", token_id, 0, self.last_probs.shape[1] - 1)
        return self.last_probs[:, token_id]

    def top_tokens(self, tokenizer, layer: int, k: int = 5) -> list[tuple[str, float]]:
        """The k most likely next tokens read at residual-stream entry `layer` (0 = embeddings)."""
        validate.integer("layer", layer, 0, self.num_layers)
        validate.integer("k", k, 1, self.last_probs.shape[1])
        values, ids = self.last_probs[layer].topk(k)
        return [(tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, ids)]


@torch.inference_mode()
def logit_lens(model, tokenizer, prompt: str, chat: bool = False) -> LensResult:
    """The logit lens over a prompt: every layer's residual stream through the final norm and the head."""
    ids = encode(tokenizer, prompt, chat)
    stream = residual_stream(model, ids)[:, 0]                      # (layers + 1, seq, hidden)
    top_ids, top_probs, last = [], [], []
    for layer_hidden in stream:                                     # one layer at a time: (seq, vocab) each
        probs = torch.softmax(lens_logits(model, layer_hidden).float(), dim=-1)
        p, i = probs.max(dim=-1)
        top_ids.append(i)
        top_probs.append(p)
        last.append(probs[-1])
    return LensResult(tokens=token_texts(tokenizer, ids[0]), top_ids=torch.stack(top_ids).cpu(),
                      top_probs=torch.stack(top_probs).cpu(), last_probs=torch.stack(last).cpu())


@torch.inference_mode()
def lens_matches_model(model, ids: torch.Tensor) -> float:
    """Largest |difference| between the lens at the last layer and the model's own logits (should be ~0)."""
    validate.token_ids("ids", ids)
    stream = residual_stream(model, ids)
    return float((lens_logits(model, stream[-1]) - model(ids.to(model.device)).logits).abs().max())


@torch.inference_mode()
def layer_logits(model, ids: torch.Tensor, layer: int) -> torch.Tensor:
    """Lens logits (batch, seq, vocab) read after decoder layer `layer` (0 = the embeddings, layers = the output)."""
    check_layer(model, layer, allow_embeddings=True)
    return lens_logits(model, residual_stream(model, ids)[layer])


def target_token_id(tokenizer, target: str) -> int:
    """The first token id of a target string (the token whose probability the lens and ablations follow)."""
    return target_ids(tokenizer, target)[0]
