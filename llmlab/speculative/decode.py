"""The speculative decoding loop over llmlab's own forward pass and KV cache, with per-run statistics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from llmlab import validate
from llmlab.attention import LlamaWeights, forward
from llmlab.kv_cache import KVCache
from llmlab.sampling import SamplingSettings, process_logits
from llmlab.speculative.drafts import Drafter, ModelDraft
from llmlab.speculative.feature_draft import FeatureDraft
from llmlab.speculative.rejection import verify, verify_greedy

GREEDY = SamplingSettings(temperature=0)


@dataclass(frozen=True)
class Step:
    """One draft/verify round: the drafted tokens, how many the target accepted, and the token it added."""

    drafted: list[int]
    accepted: int
    token: int

    @property
    def bonus(self) -> bool:
        """Whether every draft token was accepted (the added token is a bonus, not a correction)."""
        return self.accepted == len(self.drafted)


@dataclass
class SpeculativeResult:
    """New tokens of one speculative generation, every step, and the counts behind α and the speedup."""

    token_ids: list[int] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    target_passes: int = 0
    draft_passes: int = 0
    seconds: float = 0.0

    @property
    def proposed(self) -> int:
        """Draft tokens proposed in all steps."""
        return sum(len(s.drafted) for s in self.steps)

    @property
    def accepted(self) -> int:
        """Draft tokens the target accepted."""
        return sum(s.accepted for s in self.steps)

    @property
    def rejections(self) -> int:
        """Steps that ended at a rejected draft token (the tokens drafted after it were never tried)."""
        return sum(s.accepted < len(s.drafted) for s in self.steps)

    @property
    def alpha(self) -> float:
        """Per-token acceptance rate α: accepted / (accepted + rejected) tokens the target actually tried.

        This is the α of (1 − α^(γ+1))/(1 − α). accepted / proposed is lower: a rejection discards the rest of
        its step's drafts untried (α = 0.5, γ = 4 gives accepted / proposed ≈ 0.24).
        """
        tried = self.accepted + self.rejections
        return self.accepted / tried if tried else 0.0

    def position_counts(self, max_position: int = 8) -> tuple[list[int], list[int]]:
        """(accepted, tried) draft tokens at draft positions 1..max_position: position i is tried when 1..i-1 passed."""
        validate.positive_int("max_position", max_position)
        accepted, tried = [0] * max_position, [0] * max_position
        for s in self.steps:
            for i in range(min(len(s.drafted), s.accepted + 1, max_position)):
                tried[i] += 1
                accepted[i] += i < s.accepted
        return accepted, tried

    def alpha_by_position(self, max_position: int = 8) -> list[float]:
        """α at draft positions 1..max_position: accepted / tried there (0 where never tried)."""
        accepted, tried = self.position_counts(max_position)
        return [a / t if t else 0.0 for a, t in zip(accepted, tried)]

    @property
    def accepted_share(self) -> float:
        """accepted / proposed draft tokens: the share of the draft's work that was kept (0 when none)."""
        return self.accepted / self.proposed if self.proposed else 0.0

    @property
    def mean_accepted(self) -> float:
        """Mean number of draft tokens accepted per step."""
        return self.accepted / len(self.steps) if self.steps else 0.0

    @property
    def tokens_per_pass(self) -> float:
        """Generated tokens per target verify pass (1.0 for plain decoding)."""
        return len(self.token_ids) / self.target_passes if self.target_passes else 0.0

    @property
    def passes_per_token(self) -> float:
        """Target passes per generated token (1.0 for plain decoding)."""
        return self.target_passes / len(self.token_ids) if self.token_ids else 0.0

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per wall-clock second."""
        return len(self.token_ids) / self.seconds if self.seconds else 0.0


def _same_vocab(target_tokenizer, draft_tokenizer) -> None:
    """Raise ValueError unless the two tokenizers map every token to the same id."""
    if target_tokenizer is draft_tokenizer or target_tokenizer is None or draft_tokenizer is None:
        return
    a, b = target_tokenizer.get_vocab(), draft_tokenizer.get_vocab()
    if a != b:
        diff = len(set(a.items()) ^ set(b.items()))
        raise ValueError(f"draft tokenizer must be the target's (same tokens and ids); they differ in {diff} "
                         f"entries ({len(a)} vs {len(b)} tokens). Speculative decoding needs a shared tokenizer.")


def check_pair(target: LlamaWeights, draft: Drafter, tokenizer=None) -> None:
    """Raise a clear error unless the draft can serve this target: same vocabulary, tokenizer, dtype and device."""
    if not isinstance(target, LlamaWeights):
        raise TypeError(f"target must be llmlab.attention.LlamaWeights (attention.from_model(model)), "
                        f"got {type(target).__name__}")
    if not all(hasattr(draft, m) for m in ("start", "propose", "commit")):
        raise TypeError(f"draft must be a drafter (ModelDraft, NgramDraft), got {type(draft).__name__}")
    if isinstance(draft, (ModelDraft, FeatureDraft)):
        if isinstance(draft, FeatureDraft) and draft.weights.hidden_size != target.hidden_size:
            raise ValueError(f"feature draft hidden size must equal the target's ({target.hidden_size}), got "
                             f"{draft.weights.hidden_size}")
        if draft.vocab_size != target.vocab_size:
            raise ValueError(f"draft vocab size must equal the target's ({target.vocab_size}), got "
                             f"{draft.vocab_size}")
        if draft.weights.embed.dtype != target.embed.dtype:
            raise ValueError(f"draft dtype must equal the target's ({target.embed.dtype}), got "
                             f"{draft.weights.embed.dtype}; cast one with speculative.cast_weights(w, dtype) "
                             f"(trained_draft(target) already builds the draft in the target's dtype)")
        if draft.device != target.embed.device:
            raise ValueError(f"draft must be on the target's device ({target.embed.device}), got {draft.device}; "
                             f"move both with the same device")
        _same_vocab(tokenizer, draft.tokenizer)


def _no_features(target: LlamaWeights) -> torch.Tensor:
    """An empty (0, hidden) feature block: a one-token prompt has no position before its last token."""
    return torch.zeros(0, target.hidden_size, dtype=target.embed.dtype, device=target.embed.device)


def target_probs(logits: torch.Tensor, settings: SamplingSettings, history: list[int]) -> torch.Tensor:
    """Target distributions (rows, vocab) for logits (rows, vocab) at the last `rows` positions of history."""
    if settings.repetition_penalty == 1:
        return process_logits(logits.float(), settings).softmax(-1).cpu()
    rows = logits.shape[0]
    out = []
    for r in range(rows):
        ids = torch.tensor([history[:len(history) - rows + r + 1]], device=logits.device)
        out.append(process_logits(logits[r:r + 1].float(), settings, ids)[0])
    return torch.stack(out).softmax(-1).cpu()


def _one_hot(tokens: list[int], vocab: int) -> torch.Tensor:
    """(len(tokens), vocab) rows with a 1 at each token: the q of a deterministic draft."""
    q = torch.zeros(len(tokens), vocab)
    q[torch.arange(len(tokens)), torch.tensor(tokens, dtype=torch.long)] = 1.0
    return q


def _greedy_targets(logits: torch.Tensor, settings: SamplingSettings, history: list[int]) -> list[int]:
    """The target's greedy token at each row of logits (rows, vocab) (after repetition penalty if any)."""
    if settings.repetition_penalty == 1:
        return logits.argmax(-1).tolist()
    return target_probs(logits, settings, history).argmax(-1).tolist()


@torch.inference_mode()
def generate(target: LlamaWeights, draft: Drafter, input_ids: torch.Tensor, max_new_tokens: int, gamma: int = 4,
             settings: SamplingSettings = GREEDY, seed: int = 0, eos_token_id: int | Sequence[int] | None = None,
             adaptive: bool = False, max_gamma: int = 8, tokenizer=None) -> SpeculativeResult:
    """Speculative decoding of one sequence (1, seq): the draft proposes, the target verifies γ tokens per pass.

    Greedy (temperature 0) output is the target's greedy output; with sampling the output has the target's
    distribution under `settings`. Both KV caches are rolled back after each rejection. adaptive raises γ by one
    after a fully accepted step and lowers it by one otherwise, within [1, max_gamma].
    """
    validate.token_ids("input_ids", input_ids)
    if input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must hold one sequence (1, seq), got batch {input_ids.shape[0]}")
    validate.positive_int("max_new_tokens", max_new_tokens)
    validate.positive_int("gamma", gamma)
    validate.integer("max_gamma", max_gamma, low=gamma)
    if not isinstance(settings, SamplingSettings):
        raise TypeError(f"settings must be a SamplingSettings, got {type(settings).__name__}")
    validate.integer("seed", seed)
    check_pair(target, draft, tokenizer)
    eos = set() if eos_token_id is None else ({eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id))
    if int(input_ids.max()) >= target.vocab_size:
        raise ValueError(f"input_ids must be < vocab size {target.vocab_size}, got {int(input_ids.max())}")

    start_time = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    tokens = input_ids[0].tolist()
    n_prompt = len(tokens)
    capacity = n_prompt + max_new_tokens + max_gamma + 2
    cache = KVCache.for_weights(target, 1, capacity)
    reads = getattr(draft, "reads_features", False)  # a feature draft sees the target's final-norm hidden states
    hidden: list | None = [] if reads else None
    if n_prompt > 1:
        forward(target, input_ids[:, :-1].to(target.embed.device), cache, features=hidden)
    if reads:
        draft.start(tokens, capacity, features=hidden[0][0] if hidden else _no_features(target))
    else:
        draft.start(tokens, capacity)
    result = SpeculativeResult()
    g = gamma
    while len(tokens) - n_prompt < max_new_tokens:
        budget = min(g, max_new_tokens - (len(tokens) - n_prompt) - 1)
        drafted, q = draft.propose(tokens, budget, settings, gen) if budget > 0 else ([], None)
        feed, at, hidden = tokens[cache.length:] + drafted, cache.length, [] if reads else None
        logits = forward(target, torch.tensor([feed], device=target.embed.device), cache,
                         features=hidden)[0, -(len(drafted) + 1):]
        result.target_passes += 1
        if settings.greedy:
            accepted, token = verify_greedy(_greedy_targets(logits, settings, tokens + drafted), drafted)
        else:
            p = target_probs(logits, settings, tokens + drafted)
            q_full = q if q is not None else _one_hot(drafted, p.shape[1])
            accepted, token = verify(p, q_full, torch.tensor(drafted, dtype=torch.long), gen)
        result.steps.append(Step(drafted, accepted, token))
        tokens += drafted[:accepted] + [token]
        cache.truncate(len(tokens) - 1)
        if reads:  # true features of the committed positions at, ..., len(tokens) - 2; drafted ones dropped
            draft.commit(len(tokens) - 1, features=hidden[0][0, :len(tokens) - 1 - at])
        else:
            draft.commit(len(tokens) - 1)
        if adaptive and budget == g:
            g = min(g + 1, max_gamma) if accepted == len(drafted) else max(1, g - 1)
        new = tokens[n_prompt:]
        hit = next((i for i, t in enumerate(new) if t in eos), None)
        if hit is not None:
            tokens = tokens[:n_prompt + hit + 1]
            break
    result.token_ids = tokens[n_prompt:n_prompt + max_new_tokens]
    result.draft_passes = getattr(draft, "passes", 0)
    result.seconds = time.perf_counter() - start_time
    return result


@torch.inference_mode()
def target_only(target: LlamaWeights, input_ids: torch.Tensor, max_new_tokens: int,
                settings: SamplingSettings = GREEDY, seed: int = 0,
                eos_token_id: int | Sequence[int] | None = None) -> SpeculativeResult:
    """Plain cached decoding with the same forward and processors: one target pass per token (the baseline)."""
    validate.token_ids("input_ids", input_ids)
    validate.positive_int("max_new_tokens", max_new_tokens)
    eos = set() if eos_token_id is None else ({eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id))
    start_time = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    tokens = input_ids[0].tolist()
    cache = KVCache.for_weights(target, 1, len(tokens) + max_new_tokens + 1)
    logits = forward(target, input_ids.to(target.embed.device), cache)[0, -1:]
    result = SpeculativeResult()
    for _ in range(max_new_tokens):
        result.target_passes += 1
        if settings.greedy:
            token = _greedy_targets(logits, settings, tokens)[0]
        else:
            token = int(torch.multinomial(target_probs(logits, settings, tokens)[0], 1, generator=gen))
        tokens.append(token)
        result.steps.append(Step([], 0, token))
        if token in eos or len(result.steps) == max_new_tokens:
            break
        logits = forward(target, torch.tensor([[token]], device=target.embed.device), cache)[0, -1:]
    result.token_ids = tokens[input_ids.shape[1]:]
    result.seconds = time.perf_counter() - start_time
    return result
