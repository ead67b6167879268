"""Saliency over prompt tokens: gradient × input, integrated gradients (with completeness), counterfactual edits.

Every method explains one score of the model's input embeddings x (seq, hidden): the log-probability (or the
summed logit) of a target continuation, teacher-forced after the prompt. A positive token attribution means
the token pushed the model towards the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from llmlab import validate
from llmlab.evaluation.lm import gather_logprobs
from llmlab.interpret._common import encode, target_ids, token_texts

SCORES = ("logprob", "logit")
METHODS = ("grad_x_input", "integrated_gradients", "grad_norm")


def sequence_score(model, embeds: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                   score: str = "logprob") -> torch.Tensor:
    """Score (n,) of the masked tokens of ids (seq,) given input embeddings (n, seq, hidden), summed over them.

    Token t (mask[t] True, t >= 1) is scored at position t - 1, where the model predicts it.
    """
    validate.one_of("score", score, SCORES)
    logits = model(inputs_embeds=embeds).logits[:, :-1].float()          # (n, seq - 1, vocab)
    if score == "logprob":
        logits = torch.log_softmax(logits, dim=-1)
    picked = logits.gather(-1, ids[1:].to(logits.device)[None, :, None].expand(len(logits), -1, 1))[..., 0]
    return (picked * mask[1:].to(picked.device, picked.dtype)).sum(-1)


def gradient_x_input(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Gradient of fn at x, times x (same shape as x); fn maps a batch (n, *x.shape) to scores (n,)."""
    validate.float_tensor("x", x)
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x[None]).sum(), x)
    return grad * x.detach()


def gradient(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Gradient of fn at x (same shape as x); fn maps a batch (n, *x.shape) to scores (n,)."""
    validate.float_tensor("x", x)
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x[None]).sum(), x)
    return grad


def integrated_gradients(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                         baseline: torch.Tensor | None = None, steps: int = 32, batch_size: int = 16) -> torch.Tensor:
    """Integrated gradients of fn from baseline (zeros by default) to x, same shape as x.

    (x - baseline) times the mean gradient at the midpoints alpha = (k + 0.5) / steps, k = 0 .. steps - 1
    (the midpoint rule). Completeness: the result sums to fn(x) - fn(baseline) up to the rule's error.
    """
    validate.float_tensor("x", x)
    validate.integer("steps", steps, 1)
    validate.integer("batch_size", batch_size, 1)
    baseline = torch.zeros_like(x) if baseline is None else baseline
    if not isinstance(baseline, torch.Tensor) or baseline.shape != x.shape:
        raise ValueError(f"baseline must be a tensor of x's shape {tuple(x.shape)}, "
                         f"got {tuple(getattr(baseline, 'shape', ())) or type(baseline).__name__}")
    x, baseline = x.detach(), baseline.detach().to(x.device, x.dtype)
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps
    total = torch.zeros_like(x)
    for chunk in alphas.split(batch_size):
        shape = (-1,) + (1,) * x.dim()
        path = (baseline + chunk.view(shape) * (x - baseline)).requires_grad_(True)   # (n, *x.shape)
        (grad,) = torch.autograd.grad(fn(path).sum(), path)
        total += grad.sum(0)
    return (x - baseline) * total / steps


def ig_baseline(x: torch.Tensor) -> torch.Tensor:
    """The integrated-gradients baseline for embeddings x (seq, hidden): zeros, except position 0 keeps its embedding.

    With every position zeroed, the first layer's RMSNorm of a near-zero vector makes the score jump right next
    to alpha = 0 and the path integral converges badly; keeping the first token (which later tokens attend to
    heavily) removes the jump. Its own attribution is then 0 by construction.
    """
    validate.float_tensor("x", x, dims=2)
    baseline = torch.zeros_like(x)
    baseline[0] = x[0]
    return baseline


@dataclass
class Saliency:
    """Per-token attributions of one score to the tokens of prompt + target."""

    tokens: list[str]            # seq tokens: the prompt, then the target
    target_mask: torch.Tensor    # (seq,) bool, True on the target's tokens
    scores: torch.Tensor         # (seq,) attribution per token (summed over the hidden dimension)
    method: str
    value: float                 # the score at the real input
    baseline_value: float | None = None   # the score at the baseline (integrated gradients only)

    @property
    def completeness_gap(self) -> float | None:
        """|sum of attributions - (score(x) - score(baseline))|; None unless integrated gradients."""
        if self.baseline_value is None:
            return None
        return abs(float(self.scores.sum()) - (self.value - self.baseline_value))


def prompt_and_target(model, tokenizer, prompt: str, target: str | None, chat: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (seq,) of prompt + target and a bool mask (seq,) of the target's tokens; no target: the greedy next."""
    ids = encode(tokenizer, prompt, chat)[0]
    if target is None:
        with torch.inference_mode():
            tail = [int(model(input_ids=ids[None].to(model.device)).logits[0, -1].argmax())]
    else:
        tail = target_ids(tokenizer, target)
    full = torch.cat([ids, torch.tensor(tail, dtype=ids.dtype)])
    mask = torch.zeros(len(full), dtype=torch.bool)
    mask[len(ids):] = True
    return full, mask


def token_saliency(model, tokenizer, prompt: str, target: str | None = None, method: str = "grad_x_input",
                   steps: int = 32, score: str = "logprob", chat: bool = False) -> Saliency:
    """Attribution of the target's score to every token of prompt + target (target None: the greedy next token).

    method: "grad_x_input" (signed), "grad_norm" (unsigned L2 norm of the gradient), "integrated_gradients"
    (signed, from ig_baseline, `steps` midpoints; check `completeness_gap`, it shrinks as steps grow).
    """
    validate.one_of("method", method, METHODS)
    validate.one_of("score", score, SCORES)
    ids, mask = prompt_and_target(model, tokenizer, prompt, target, chat)
    embed = model.get_input_embeddings()
    x = embed(ids.to(model.device)).detach().float()                    # (seq, hidden)
    dtype = embed.weight.dtype

    def fn(batch: torch.Tensor) -> torch.Tensor:
        return sequence_score(model, batch.to(dtype), ids, mask, score)

    with torch.no_grad():
        value = float(fn(x[None])[0])
    baseline_value = None
    if method == "grad_x_input":
        per_token = gradient_x_input(fn, x).sum(-1)
    elif method == "grad_norm":
        per_token = gradient(fn, x).norm(dim=-1)
    else:
        baseline = ig_baseline(x)
        per_token = integrated_gradients(fn, x, baseline, steps=steps).sum(-1)
        with torch.no_grad():
            baseline_value = float(fn(baseline[None])[0])
    return Saliency(tokens=token_texts(tokenizer, ids), target_mask=mask, scores=per_token.detach().cpu(),
                    method=method, value=value, baseline_value=baseline_value)


@torch.inference_mode()
def continuation_logprob(model, prompt_ids: torch.Tensor, target: list[int]) -> torch.Tensor:
    """Log-probability (n,) of the target token ids after each prompt of prompt_ids (n, P), teacher-forced."""
    validate.token_ids("prompt_ids", prompt_ids)
    n, p = prompt_ids.shape
    tail = torch.tensor(target, dtype=prompt_ids.dtype).expand(n, -1)
    logits = model(input_ids=torch.cat([prompt_ids, tail], 1).to(model.device)).logits[:, p - 1:-1].float()
    return gather_logprobs(logits, tail).sum(-1).cpu()


@dataclass
class Counterfactual:
    """The target's probability before and after an edit of the prompt."""

    tokens_before: list[str]
    tokens_after: list[str]
    prob_before: float
    prob_after: float


def edit_token(model, tokenizer, prompt: str, target: str, position: int, replacement: str | None = None,
               chat: bool = False) -> Counterfactual:
    """Replace (or, with replacement None, drop) the prompt token at `position`; the target's probability moves."""
    ids = encode(tokenizer, prompt, chat)[0]
    tail = target_ids(tokenizer, target)
    validate.integer("position", position, -len(ids), len(ids) - 1)
    position %= len(ids)
    new = [] if replacement is None else target_ids(tokenizer, replacement)
    if replacement is None and len(ids) == 1:
        raise ValueError("position cannot be dropped: the prompt has only one token")
    edited = torch.cat([ids[:position], torch.tensor(new, dtype=ids.dtype), ids[position + 1:]])
    before = float(continuation_logprob(model, ids[None], tail).exp()[0])
    after = float(continuation_logprob(model, edited[None], tail).exp()[0])
    return Counterfactual(tokens_before=token_texts(tokenizer, ids), tokens_after=token_texts(tokenizer, edited),
                          prob_before=before, prob_after=after)


def drop_each_token(model, tokenizer, prompt: str, target: str, chat: bool = False) -> tuple[list[str], torch.Tensor,
                                                                                             float]:
    """Occlusion: the target's probability (seq,) with each prompt token dropped in turn, in one batch.

    Returns (prompt tokens, probabilities with token i dropped, probability with nothing dropped).
    """
    ids = encode(tokenizer, prompt, chat)[0]
    if len(ids) < 2:
        raise ValueError(f"prompt must have at least 2 tokens to drop one, got {len(ids)}")
    tail = target_ids(tokenizer, target)
    keep = ~torch.eye(len(ids), dtype=torch.bool)
    dropped = ids.expand(len(ids), -1)[keep].view(len(ids), len(ids) - 1)
    probs = continuation_logprob(model, dropped, tail).exp()
    base = float(continuation_logprob(model, ids[None], tail).exp()[0])
    return token_texts(tokenizer, ids), probs, base
