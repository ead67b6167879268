"""Logits processors (temperature, top-k, top-p, min-p, repetition penalty) and decoding loops over a causal LM."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterator, Sequence

import torch

from llmlab import validate as V

NEG_INF = float("-inf")


# ---------------------------------------------------------------- argument checks

def _validate_logits(logits: torch.Tensor) -> None:
    """Reject anything but a floating tensor (..., vocab) of finite logits or -inf masks (NaN and +inf are errors).

    Each public entry point calls this once; the processors inside a chain (process_logits) never re-check.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor of shape (..., vocab), got {type(logits).__name__}")
    if logits.dim() < 1 or logits.shape[-1] < 1 or not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor of shape (..., vocab), got shape "
                         f"{tuple(logits.shape)} and dtype {logits.dtype}")
    V.finite("logits", logits, allow_neg_inf=True)


def _number(name: str, value) -> float:
    """A real number (not a bool), else TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def validate_temperature(temperature: float) -> float:
    """Validate a temperature: a number >= 0 (0 means greedy)."""
    value = _number("temperature", temperature)
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"temperature must be in [0, inf) (0 means greedy), got {temperature!r}")
    return value


def validate_top_k(top_k: int) -> int:
    """Validate top_k: an int >= 0 (0 means no top-k filtering)."""
    V.integer("top_k", top_k)  # TypeError for a non-int, as for every parameter
    if top_k < 0:
        raise ValueError(f"top_k must be an int in [0, inf) (0 means off), got {top_k!r}")
    return top_k


def validate_top_p(top_p: float) -> float:
    """Validate top_p: a number in (0, 1] (1 means no nucleus filtering)."""
    return V.number("top_p", top_p, 0, 1, low_open=True)


def validate_min_p(min_p: float) -> float:
    """Validate min_p: a number in [0, 1] (0 means no min-p filtering)."""
    return V.probability("min_p", min_p)


def validate_penalty(penalty: float) -> float:
    """Validate a repetition penalty: a number > 0 (1 means no penalty)."""
    value = _number("penalty", penalty)
    if not value > 0 or math.isinf(value):
        raise ValueError(f"penalty must be in (0, inf) (1 means off), got {penalty!r}")
    return value


# ---------------------------------------------------------------- logits processors (pure, batched)

def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Logits divided by the temperature; temperature 0 keeps only the argmax (greedy)."""
    _validate_logits(logits)
    return _temperature(logits, validate_temperature(temperature))


def _temperature(logits: torch.Tensor, t: float) -> torch.Tensor:
    """apply_temperature's maths on already-validated arguments (the per-token path)."""
    if t == 0:
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, NEG_INF)
    return logits / t


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities softmax(logits / T) along the last axis; T=0 puts all mass on the argmax."""
    return torch.softmax(apply_temperature(logits, temperature), dim=-1)


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Logits with everything below the k-th largest set to -inf (ties kept); top_k=0 keeps all."""
    _validate_logits(logits)
    return _top_k(logits, validate_top_k(top_k))


def _top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """top_k_filter's maths on already-validated arguments."""
    if k == 0 or k >= logits.shape[-1]:
        return logits.clone()
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits outside the nucleus (smallest most-likely set with probability >= top_p) set to -inf."""
    _validate_logits(logits)
    return _top_p(logits, validate_top_p(top_p))


def _top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """top_p_filter's maths on already-validated arguments."""
    if p == 1:
        return logits.clone()
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter_(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Logits of tokens less likely than min_p times the top token's probability set to -inf."""
    _validate_logits(logits)
    return _min_p(logits, validate_min_p(min_p))


def _min_p(logits: torch.Tensor, m: float) -> torch.Tensor:
    """min_p_filter's maths on already-validated arguments."""
    if m == 0:
        return logits.clone()
    probs = logits.softmax(dim=-1)
    drop = probs < m * probs.amax(dim=-1, keepdim=True)
    drop.scatter_(-1, probs.argmax(dim=-1, keepdim=True), False)
    return logits.masked_fill(drop, NEG_INF)


def repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """Logits of tokens already in input_ids made less likely: positive ones divided, negative ones multiplied."""
    _validate_logits(logits)
    _validate_history(input_ids, logits)
    return _repetition_penalty(logits, input_ids, validate_penalty(penalty))


def _validate_history(input_ids: torch.Tensor, logits: torch.Tensor) -> None:
    """The ids a repetition penalty looks back on: integers with the same leading shape as logits."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32) \
            or input_ids.dim() != logits.dim() or input_ids.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"input_ids must be an integer tensor with the same leading shape as logits "
                         f"{tuple(logits.shape[:-1])}, got {getattr(input_ids, 'shape', type(input_ids).__name__)}")


def _repetition_penalty(logits: torch.Tensor, input_ids: torch.Tensor, value: float) -> torch.Tensor:
    """repetition_penalty's maths on already-validated arguments."""
    ids = input_ids.long()
    seen = logits.gather(-1, ids)
    seen = torch.where(seen < 0, seen * value, seen / value)
    return logits.scatter(-1, ids, seen)


@dataclass(frozen=True)
class SamplingSettings:
    """One decoding configuration: temperature (0 = greedy), top-k, top-p, min-p and repetition penalty."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        validate_temperature(self.temperature)
        validate_top_k(self.top_k)
        validate_top_p(self.top_p)
        validate_min_p(self.min_p)
        validate_penalty(self.repetition_penalty)

    @property
    def greedy(self) -> bool:
        """Whether this configuration always picks the most likely token."""
        return self.temperature == 0


def process_logits(logits: torch.Tensor, settings: SamplingSettings,
                   input_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Apply repetition penalty, temperature, top-k, top-p and min-p in that order (transformers' order).

    The order matters: temperature reshapes the distribution first, so top-p and min-p measure probability
    mass after it; top-k before top-p caps how many tokens the nucleus can hold. Logits are checked once here
    (NaN and +inf rejected, -inf masks allowed), never again inside the chain.
    """
    if not isinstance(settings, SamplingSettings):
        raise TypeError(f"settings must be a SamplingSettings, got {type(settings).__name__}")
    _validate_logits(logits)
    if settings.repetition_penalty != 1:
        if input_ids is None:
            raise ValueError("input_ids must be given when repetition_penalty != 1, got None")
        _validate_history(input_ids, logits)
    return _process(logits, settings, input_ids)


def _process(logits: torch.Tensor, settings: SamplingSettings, input_ids: torch.Tensor | None) -> torch.Tensor:
    """process_logits' chain on already-validated arguments (the per-token path)."""
    out = logits
    if settings.repetition_penalty != 1:
        out = _repetition_penalty(out, input_ids, settings.repetition_penalty)
    # settings were validated when the SamplingSettings was made: the per-token path skips re-checking them
    out = _temperature(out, settings.temperature)
    out = _top_k(out, settings.top_k)
    out = _top_p(out, settings.top_p)
    return _min_p(out, settings.min_p)


def sampling_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                          min_p: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """For 1-d logits: the final sampling probabilities and the boolean mask of kept tokens."""
    _validate_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be 1-d (vocab,), got shape {tuple(logits.shape)}")
    processed = _process(logits.float(), SamplingSettings(temperature, top_k, top_p, min_p), None)
    kept = torch.isfinite(processed)
    return torch.softmax(processed, dim=-1), kept


# ---------------------------------------------------------------- decoding loops

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


def _forward(model, ids: torch.Tensor, past):
    """One forward pass with the KV cache; returns float32 last-position logits and the cache."""
    out = model(input_ids=ids, past_key_values=past, use_cache=True)
    return out.logits[:, -1, :].float(), out.past_key_values


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
    logits, past = _forward(model, ids, None)
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
        logits, past = _forward(model, step, past)
    return results


def pick_token(processed: torch.Tensor, greedy: bool, generator: torch.Generator) -> int:
    """The next token from processed 1-d logits (vocab,): the argmax when greedy, else one seeded draw."""
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
    logits, past = _forward(model, ids, None)
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
        logits, past = _forward(model, step, past)


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
    logits, past = _forward(model, seqs, None)
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
        past.reorder_cache(beam_index)
        step_ids = torch.tensor([t[-1] for t in tokens], device=seqs.device).unsqueeze(1)
        seqs = torch.cat([seqs[beam_index], step_ids], dim=1)
        logits, past = _forward(model, step_ids, past)
    return finished


# ---------------------------------------------------------------- best-of-N and self-consistency

def select_best(logprobs: Sequence[Sequence[float]]) -> int:
    """Index of the candidate with the highest mean logprob per token (first one on ties)."""
    if not logprobs:
        raise ValueError("logprobs must hold at least one candidate's per-token logprobs, got []")
    means = []
    for i, lps in enumerate(logprobs):
        values = [float(v) for v in lps]
        if not values:
            raise ValueError(f"logprobs[{i}] must hold at least one token's logprob, got []")
        means.append(sum(values) / len(values))
    return max(range(len(means)), key=lambda i: (means[i], -i))


def best_of_n(model, input_ids: torch.Tensor, n: int, max_new_tokens: int,
              settings: SamplingSettings = SamplingSettings(), seed: int = 0,
              eos_token_id: int | Sequence[int] | None = None) -> list[Generation]:
    """Sample n candidates and return them ranked by mean logprob, best first."""
    V.positive_int("n", n)
    candidates = decode(model, input_ids, max_new_tokens, settings, n, seed, eos_token_id)
    return sorted(candidates, key=lambda g: -g.mean_logprob)


def majority_vote(answers: Sequence[Hashable | None]) -> tuple[Hashable | None, int]:
    """The most frequent non-None answer and its count (the earliest on ties); (None, 0) if none."""
    if isinstance(answers, (str, bytes)):
        raise TypeError(f"answers must be a sequence of answers, got {type(answers).__name__}")
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return winner, best


@dataclass(frozen=True)
class Vote:
    """Self-consistency result: the voted answer, its votes and every sampled answer."""

    answer: Hashable | None
    votes: int
    answers: list


def self_consistency(model, tokenizer, input_ids: torch.Tensor, n: int, extract: Callable[[str], Hashable | None],
                     max_new_tokens: int = 16, settings: SamplingSettings = SamplingSettings(temperature=0.7),
                     seed: int = 0) -> Vote:
    """Sample n answers, extract each one's final answer and return the majority vote."""
    V.positive_int("n", n)
    if not callable(extract):
        raise TypeError(f"extract must be a function str -> answer, got {type(extract).__name__}")
    gens = decode(model, input_ids, max_new_tokens, settings, n, seed)
    answers = [extract(tokenizer.decode(g.token_ids, skip_special_tokens=True)) for g in gens]
    answer, votes = majority_vote(answers)
    return Vote(answer, votes, answers)


def distinct_n(token_ids: Sequence[int], n: int = 2) -> float:
    """Share of distinct n-grams among all n-grams of a sequence (1.0 = no repetition)."""
    V.positive_int("n", n)
    ids = list(token_ids)
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        raise ValueError(f"token_ids must hold at least n={n} tokens, got {len(ids)}")
    return len(set(grams)) / len(grams)


def first_word(text: str) -> str | None:
    """The first word or number of a reply, lower-cased (None if there is none): a simple answer extractor."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    match = re.search(r"[A-Za-z]+|\d+", text)
    return match.group(0).lower() if match else None


def accuracy_vs_n(answers: Sequence[Sequence], gold: Sequence, ns: Sequence[int],
                  mean_logprobs: Sequence[Sequence[float]] | None = None) -> list[float]:
    """Accuracy over questions using the first n samples of each: majority vote, or best-of-n by mean logprob."""
    if len(answers) != len(gold) or not answers:
        raise ValueError(f"answers and gold must be non-empty and the same length, got {len(answers)} and {len(gold)}")
    out = []
    for n in ns:
        V.positive_int("n", n)
        correct = 0
        for q, (samples, want) in enumerate(zip(answers, gold)):
            if len(samples) < n:
                raise ValueError(f"n must be at most the {len(samples)} samples of question {q}, got {n}")
            if mean_logprobs is None:
                pick = majority_vote(samples[:n])[0]
            else:
                pick = samples[select_best([[v] for v in mean_logprobs[q][:n]])]
            correct += pick == want
        out.append(correct / len(gold))
    return out


def probabilities_vs_temperature(logits: torch.Tensor, temperatures: Sequence[float]) -> torch.Tensor:
    """softmax(logits / T) for each temperature: a (len(temperatures), vocab) tensor."""
    _validate_logits(logits)
    if logits.dim() != 1:
        raise ValueError(f"logits must be 1-d (vocab,), got shape {tuple(logits.shape)}")
    x = logits.float()
    return torch.stack([torch.softmax(_temperature(x, validate_temperature(t)), dim=-1) for t in temperatures])
