"""Decoding loops over a causal LM: decode (greedy or sampled, batched), stream and beam search."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from llmlab import validate as V
from llmlab.sampling import engine
from llmlab.sampling.processors import _process
from llmlab.sampling.settings import NEG_INF, SamplingSettings, _number


@dataclass
class Generation:
    """New tokens of one generated sequence and the model's logprob of each (unprocessed, T=1)."""

    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)

    @property
    def mean_logprob(self) -> float:
        """Average logprob per generated token (-inf for an empty generation)."""
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else NEG_INF


@dataclass(frozen=True)
class Beam:
    """A finished beam: its new tokens, the summed logprob and the length-normalized score."""

    token_ids: list[int]
    logprob: float
    score: float


def _validate_ids(input_ids: torch.Tensor) -> None:
    """Prompt ids must be a (1, seq) integer tensor."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[0] != 1 \
            or input_ids.shape[1] < 1 or input_ids.is_floating_point():
        raise ValueError(f"input_ids must be an integer tensor of shape (1, seq) with seq >= 1, got "
                         f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")


def _eos_ids(model, eos_token_id: int | Sequence[int] | None) -> set[int]:
    """End-of-sequence ids: the argument, else the model's generation config."""
    if eos_token_id is None:
        eos_token_id = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos_token_id is None:
        return set()
    return {int(eos_token_id)} if isinstance(eos_token_id, int) else {int(i) for i in eos_token_id}


def _finite_logprob(logprob: torch.Tensor, row: int) -> float:
    """The picked token's logprob as a float; NaN means the model's logits held NaN or +inf (log_softmax spreads it)."""
    value = float(logprob)
    if math.isnan(value):
        raise ValueError(f"logits must hold only finite values or -inf (a mask): the model's logits for row {row} "
                         f"held NaN or +inf (the picked token's logprob is NaN)")
    return value


ChooseFn = Callable[[list[int], torch.Tensor, torch.Tensor, torch.Generator], int]


@torch.inference_mode()
def decode(model, input_ids: torch.Tensor, max_new_tokens: int, settings: SamplingSettings = SamplingSettings(),
           num_samples: int = 1, seed: int = 0, eos_token_id: int | Sequence[int] | None = None,
           choose: ChooseFn | None = None) -> list[Generation]:
    """Generate num_samples sequences in one batch (greedy when settings.temperature == 0), with a KV cache.

    A plain Llama runs on the kit's own forward pass and KV cache (sampling.engine); any other model on its own.
    choose(new_token_ids, raw_logits, processed_logits, generator) -> token id replaces the default pick
    (argmax or a draw from the processed distribution); structured output uses it. The per-token path runs the
    processors unchecked; NaN or +inf model logits are caught for free by the picked token's logprob turning NaN.
    """
    _validate_ids(input_ids)
    V.positive_int("max_new_tokens", max_new_tokens)
    V.positive_int("num_samples", num_samples)
    if not isinstance(settings, SamplingSettings):
        raise TypeError(f"settings must be a SamplingSettings, got {type(settings).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    eos = _eos_ids(model, eos_token_id)
    pad = min(eos) if eos else 0
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ids = input_ids.to(model.device).repeat(num_samples, 1)
    results = [Generation() for _ in range(num_samples)]
    done = [False] * num_samples
    run = engine.session(model, num_samples, ids.shape[1] + max_new_tokens)
    logits = run(ids)
    for _ in range(max_new_tokens):
        logprobs = torch.log_softmax(logits, dim=-1).cpu()
        processed = _process(logits, settings, ids).cpu()
        picks = []
        for row in range(num_samples):
            if done[row]:
                picks.append(pad)
                continue
            if choose is not None:
                token = choose(results[row].token_ids, logits[row].cpu(), processed[row], gen)
            else:
                token = pick_token(processed[row], settings.greedy, gen)
            results[row].token_ids.append(token)
            results[row].logprobs.append(_finite_logprob(logprobs[row, token], row))
            done[row] = token in eos
            picks.append(token)
        if all(done):
            break
        step = torch.tensor(picks, device=ids.device).unsqueeze(1)
        ids = torch.cat([ids, step], dim=1)
        logits = run(step)
    return results


def pick_token(processed: torch.Tensor, greedy: bool, generator: torch.Generator) -> int:
    """The next token from processed 1-d logits (vocab,): the argmax when greedy, else one seeded draw.

    >>> pick_token(torch.tensor([0.1, 2.0, 1.0]), greedy=True, generator=torch.Generator())
    1
    """
    if greedy:
        return int(processed.argmax())
    try:
        return int(torch.multinomial(processed.softmax(-1), 1, generator=generator))
    except RuntimeError:
        V.finite("logits", processed, allow_neg_inf=True)  # checked only on failure: names NaN/+inf model logits
        raise


def greedy(model, input_ids: torch.Tensor, max_new_tokens: int,
           eos_token_id: int | Sequence[int] | None = None) -> Generation:
    """Greedy decoding: always the most likely next token."""
    return decode(model, input_ids, max_new_tokens, SamplingSettings(temperature=0), eos_token_id=eos_token_id)[0]


def sample(model, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, min_p: float = 0.0, repetition_penalty: float = 1.0, num_samples: int = 1,
           seed: int = 0, eos_token_id: int | Sequence[int] | None = None) -> list[Generation]:
    """Seeded sampling of num_samples sequences from the processed next-token distribution."""
    settings = SamplingSettings(temperature, top_k, top_p, min_p, repetition_penalty)
    return decode(model, input_ids, max_new_tokens, settings, num_samples, seed, eos_token_id)


@dataclass(frozen=True)
class StreamedToken:
    """One token as it is generated: its id, its text and its logprob."""

    token_id: int
    text: str
    logprob: float


@torch.inference_mode()
def stream(model, tokenizer, input_ids: torch.Tensor, max_new_tokens: int,
           settings: SamplingSettings = SamplingSettings(temperature=0), seed: int = 0,
           eos_token_id: int | Sequence[int] | None = None) -> Iterator[StreamedToken]:
    """Yield tokens one at a time as they are generated (text is the newly decodable part)."""
    _validate_ids(input_ids)
    V.positive_int("max_new_tokens", max_new_tokens)
    eos = _eos_ids(model, eos_token_id)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ids = input_ids.to(model.device)
    new: list[int] = []
    shown = ""
    run = engine.session(model, 1, ids.shape[1] + max_new_tokens)
    logits = run(ids)
    for _ in range(max_new_tokens):
        processed = _process(logits, settings, ids).cpu()[0]
        token = pick_token(processed, settings.greedy, gen)
        logprob = _finite_logprob(torch.log_softmax(logits[0], dim=-1)[token], 0)
        new.append(token)
        text = tokenizer.decode(new, skip_special_tokens=True)
        piece, shown = (text[len(shown):], text) if not text.endswith("\ufffd") else ("", shown)
        yield StreamedToken(token, piece, logprob)
        if token in eos:
            return
        step = torch.tensor([[token]], device=ids.device)
        ids = torch.cat([ids, step], dim=1)
        logits = run(step)


@torch.inference_mode()
def beam_search(model, input_ids: torch.Tensor, num_beams: int, max_new_tokens: int, length_penalty: float = 1.0,
                eos_token_id: int | Sequence[int] | None = None) -> list[Beam]:
    """Beam search with length normalization (score = logprob / length**length_penalty), best beam first.

    Follows transformers' rules: keep 2*num_beams candidates per step, finish a beam when it emits EOS or reaches
    max_new_tokens, and stop once no running beam can beat the worst of num_beams finished ones.
    """
    _validate_ids(input_ids)
    V.positive_int("num_beams", num_beams)
    V.positive_int("max_new_tokens", max_new_tokens)
    lp = _number("length_penalty", length_penalty)
    eos = _eos_ids(model, eos_token_id)
    seqs = input_ids.to(model.device).repeat(num_beams, 1)
    running = torch.full((num_beams,), -1e9)
    running[0] = 0.0
    tokens: list[list[int]] = [[] for _ in range(num_beams)]
    finished: list[Beam] = []
    run = engine.session(model, num_beams, seqs.shape[1] + max_new_tokens)
    logits = run(seqs)
    for step in range(1, max_new_tokens + 1):
        vocab = logits.shape[-1]
        total = (torch.log_softmax(logits, dim=-1).cpu() + running[:, None]).flatten()
        top_scores, top_index = total.topk(2 * num_beams)
        next_running, next_tokens, parents = [], [], []
        for rank, (score, index) in enumerate(zip(top_scores.tolist(), top_index.tolist())):
            parent, token = divmod(index, vocab)
            candidate = tokens[parent] + [token]
            if token in eos or step == max_new_tokens:
                if rank < num_beams:
                    finished.append(Beam(candidate, score, score / step ** lp))
            elif len(next_running) < num_beams:
                next_running.append(score)
                next_tokens.append(candidate)
                parents.append(parent)
        finished = sorted(finished, key=lambda b: -b.score)[:num_beams]
        if len(next_running) < num_beams:
            break
        full = len(finished) == num_beams
        if full and next_running[0] / step ** lp <= finished[-1].score:
            break
        running = torch.tensor(next_running)
        tokens = next_tokens
        beam_index = torch.tensor(parents, device=seqs.device)
        run.reorder(beam_index)
        step_ids = torch.tensor([t[-1] for t in tokens], device=seqs.device).unsqueeze(1)
        seqs = torch.cat([seqs[beam_index], step_ids], dim=1)
        logits = run(step_ids)
    return finished
