"""Post-training: preference batches, the DPO loss from scratch, a Bradley–Terry reward model, KL to the
reference, and a rule-based judge whose win rate gets its interval from `evaluation.stats.bootstrap_ci`.

DPO (Rafailov et al. 2023, eq. 7): with sequence log-probabilities of the response only (prompt tokens masked),

    loss = -log σ( β [ (log π(y_w|x) - log π_ref(y_w|x)) - (log π(y_l|x) - log π_ref(y_l|x)) ] )

averaged over pairs. β multiplies the difference of log-ratios *inside* the log-sigmoid. The implicit reward of a
response is β (log π - log π_ref). A reward model trained with the Bradley–Terry loss -log σ(r_w - r_l) is the
same maths with an explicit scorer. `dpo_loss` matches TRL's `DPOTrainer` (loss_type "sigmoid"); a test checks it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from llmlab import validate as V
from llmlab.evaluation.lm import gather_logprobs
from llmlab.evaluation.text import contains_match
from llmlab.lora.training import collate
from llmlab.tokens import generate_batch, pad_token_id, sft_example

# ---------------------------------------------------------------- numerics


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """log σ(x) computed stably as min(x, 0) - log1p(exp(-|x|)) (no overflow for large |x|); any shape."""
    V.float_tensor("x", x)
    return torch.minimum(x, torch.zeros_like(x)) - torch.log1p(torch.exp(-x.abs()))


# ---------------------------------------------------------------- encoding preference pairs


def encode_response(tokenizer, prompt: str, response: str) -> dict[str, list[int]]:
    """input_ids of chat(prompt) + response turn, and labels with -100 on the prompt (`tokens.sft_example`)."""
    V.text("prompt", prompt)
    return sft_example(tokenizer, [{"role": "user", "content": prompt}], response)


def preference_batch(tokenizer, pairs: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Right-padded batch of 2B rows, the B chosen then the B rejected (TRL's layout).

    Returns input_ids, attention_mask (2B, T) and completion_mask (2B, T): 1 on response tokens only.
    """
    V.non_empty("pairs", pairs)
    chosen = [encode_response(tokenizer, p["prompt"], p["chosen"]) for p in pairs]
    rejected = [encode_response(tokenizer, p["prompt"], p["rejected"]) for p in pairs]
    batch = collate(chosen + rejected, pad_token_id(tokenizer))
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "completion_mask": (batch["labels"] != -100).long()}


def masked_sequence_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor,
                             average: bool = False) -> torch.Tensor:
    """(B,) sum (or mean) of the completion tokens' logprobs from (B, T, V) logits and (B, T) ids and mask.

    Token t is predicted by the logits at position t-1: log_softmax(logits[:, :-1]) scores input_ids[:, 1:], and
    completion_mask[:, 1:] says which of those count.
    """
    token_lp = gather_logprobs(logits[:, :-1], input_ids[:, 1:])
    mask = completion_mask[:, 1:].to(token_lp.device).float()  # (B, T-1)
    total = (token_lp * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if average else total


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_mask: torch.Tensor,
                      average: bool = False) -> torch.Tensor:
    """(B,) sum (or mean, if average) of log π(token | before) over the completion tokens of each row.

    input_ids, attention_mask, completion_mask: (B, T). Gradients flow (use torch.no_grad() for the reference).
    """
    V.token_ids("input_ids", input_ids)
    for name, m in [("attention_mask", attention_mask), ("completion_mask", completion_mask)]:
        if not isinstance(m, torch.Tensor) or m.shape != input_ids.shape:
            raise ValueError(f"{name} must be a tensor of shape {tuple(input_ids.shape)}, got "
                             f"{getattr(m, 'shape', type(m).__name__)}")
    device = next(model.parameters()).device
    ids = input_ids.to(device)
    logits = model(input_ids=ids, attention_mask=attention_mask.to(device)).logits  # (B, T, V)
    return masked_sequence_logprobs(logits, ids, completion_mask, average)


# ---------------------------------------------------------------- DPO


@dataclass(frozen=True)
class DPOOutput:
    """The mean DPO loss and each pair's implicit rewards β(log π - log π_ref) for chosen and rejected, (B,)."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def margins(self) -> torch.Tensor:
        """(B,) chosen reward minus rejected reward."""
        return self.chosen_rewards - self.rejected_rewards


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1) -> DPOOutput:
    """DPO loss from (B,) sequence logprobs of chosen/rejected responses under the policy and the reference.

    >>> chosen, rejected, ref = torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-1.0])
    >>> out = dpo_loss(chosen, rejected, ref, ref, beta=1.0)
    >>> round(out.loss.item(), 4)
    0.3133
    """
    V.number("beta", beta, low=0.0, low_open=True)
    for name, t in [("policy_chosen", policy_chosen), ("policy_rejected", policy_rejected),
                    ("ref_chosen", ref_chosen), ("ref_rejected", ref_rejected)]:
        V.float_tensor(name, t, dims=1)
        if t.shape != policy_chosen.shape:
            raise ValueError(f"{name} must have shape {tuple(policy_chosen.shape)}, got {tuple(t.shape)}")
    chosen_ratio = policy_chosen - ref_chosen.to(policy_chosen.device)
    rejected_ratio = policy_rejected - ref_rejected.to(policy_chosen.device)
    loss = -log_sigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
    return DPOOutput(loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def reference_context(model, reference=None):
    """A context in which `reference` (or, if None, `model` with its peft adapter disabled) is the reference."""
    if reference is not None:
        return contextlib.nullcontext(reference)
    if not hasattr(model, "disable_adapter"):
        raise ValueError("reference is None but model has no peft adapter to disable: pass a reference model")

    @contextlib.contextmanager
    def disabled():
        with model.disable_adapter():
            yield model
    return disabled()


def dpo_batch_loss(policy, batch: dict[str, torch.Tensor], beta: float = 0.1, reference=None) -> DPOOutput:
    """The DPO loss of a preference_batch: policy logprobs with gradients, reference logprobs without."""
    args = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
    chosen, rejected = sequence_logprobs(policy, *args).chunk(2)
    with torch.no_grad(), reference_context(policy, reference) as ref:
        ref_chosen, ref_rejected = sequence_logprobs(ref, *args).chunk(2)
    return dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta)


@torch.no_grad()
def response_kl(policy, batch: dict[str, torch.Tensor], reference=None) -> float:
    """Mean over response tokens of KL(π || π_ref) of the next-token distributions (teacher-forced on the batch)."""
    device = next(policy.parameters()).device
    ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    lp = torch.log_softmax(policy(input_ids=ids, attention_mask=attn).logits[:, :-1].float(), dim=-1)
    with reference_context(policy, reference) as ref:
        lq = torch.log_softmax(ref(input_ids=ids, attention_mask=attn).logits[:, :-1].float(), dim=-1)
    kl = (lp.exp() * (lp - lq)).sum(-1)  # (B, T-1)
    mask = batch["completion_mask"][:, 1:].to(device).float()
    return float((kl * mask).sum() / mask.sum())


# ---------------------------------------------------------------- reward model (Bradley–Terry)


def bradley_terry_loss(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> torch.Tensor:
    """Mean of -log σ(r_chosen - r_rejected) over (B,) scores: the reward-model loss."""
    V.float_tensor("chosen_scores", chosen_scores, dims=1)
    V.float_tensor("rejected_scores", rejected_scores, dims=1)
    V.same_length(("chosen_scores", "rejected_scores"), chosen_scores, rejected_scores)
    return -log_sigmoid(chosen_scores - rejected_scores).mean()


@torch.no_grad()
def response_features(model, tokenizer, prompts: Sequence[str], responses: Sequence[str],
                      batch_size: int = 16) -> torch.Tensor:
    """(N, hidden): the last layer's hidden state at each conversation's last token (what a reward head reads)."""
    V.same_length(("prompts", "responses"), V.non_empty("prompts", prompts), responses)
    V.positive_int("batch_size", batch_size)
    encoded = [encode_response(tokenizer, p, r) for p, r in zip(prompts, responses)]
    device = next(model.parameters()).device
    feats = []
    for i in range(0, len(encoded), batch_size):
        batch = collate(encoded[i:i + batch_size], pad_token_id(tokenizer))
        # the decoder alone: its final-normed output is the last hidden state, and no vocabulary head is computed
        out = model.get_decoder()(input_ids=batch["input_ids"].to(device),
                                  attention_mask=batch["attention_mask"].to(device))
        last = batch["attention_mask"].sum(1) - 1  # index of each row's last real token
        feats.append(out.last_hidden_state[torch.arange(len(last)), last.to(device)].float().cpu())
    return torch.cat(feats)


def train_reward_head(chosen: torch.Tensor, rejected: torch.Tensor, steps: int = 300, lr: float = 0.01,
                      weight_decay: float = 0.01, seed: int = 0) -> tuple[nn.Linear, list[float]]:
    """A linear reward head r(x) = w·x + b on (N, d) features, fit with the Bradley–Terry loss (full batch, AdamW).

    Features are standardized with the training pairs' mean and spread, folded into the head. Returns the head
    and the loss per step.
    """
    V.float_tensor("chosen", chosen, dims=2)
    V.float_tensor("rejected", rejected, dims=2)
    if chosen.shape != rejected.shape:
        raise ValueError(f"chosen and rejected must have the same shape, got {tuple(chosen.shape)} and "
                         f"{tuple(rejected.shape)}")
    V.positive_int("steps", steps)
    V.number("lr", lr, low=0.0, low_open=True)
    both = torch.cat([chosen, rejected])
    mean, std = both.mean(0), both.std(0).clamp(min=1e-6)
    torch.manual_seed(seed)
    head = nn.Linear(chosen.shape[1], 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    zc, zr = (chosen - mean) / std, (rejected - mean) / std
    losses = []
    for _ in range(steps):
        loss = bradley_terry_loss(head(zc)[:, 0], head(zr)[:, 0])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():  # fold the standardization into the head: w·(x - m)/s + b = (w/s)·x + (b - w·m/s)
        head.weight /= std
        head.bias -= (head.weight * mean).sum()
    return head, losses


@torch.no_grad()
def pairwise_accuracy(head: nn.Module, chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs where the reward head scores the chosen response above the rejected one."""
    return float((head(chosen)[:, 0] > head(rejected)[:, 0]).float().mean())


# ---------------------------------------------------------------- generation, judge, win rate


@torch.no_grad()
def chat_replies(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 48,
                 batch_size: int = 16) -> list[str]:
    """Greedy chat replies to user prompts, generated in left-padded batches (`tokens.generate_batch`)."""
    return [r.strip() for r in generate_batch(model, tokenizer, prompts, max_new_tokens, batch_size)]


def judge_reply(reply: str, gold: str, max_words: int = 20) -> int:
    """Rule-based score 0-2: +1 if the gold answer appears as whole words (`contains_match`), +1 if the reply has
    <= max_words words.

    An empty reply scores 0 (it is not concise, it is missing).
    """
    V.text("reply", reply, allow_empty=True)
    V.text("gold", gold)
    V.positive_int("max_words", max_words)
    n = len(reply.split())
    if n == 0:
        return 0
    return int(contains_match(reply, gold)) + int(n <= max_words)


def pairwise_outcomes(scores_a: Sequence[float], scores_b: Sequence[float]) -> list[float]:
    """Per prompt: 1 if A scored higher, 0.5 on a tie, 0 if B scored higher."""
    V.same_length(("scores_a", "scores_b"), V.non_empty("scores_a", scores_a), scores_b)
    return [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(scores_a, scores_b)]

