"""A DSPy engine backed by a local transformers model, and the helpers to plug it into dspy.LM offline.

dspy 3.4 plugs a model in through an *engine*: an object with ``complete(request: dspy.lm15.Request) ->
dspy.lm15.Response``, passed as ``dspy.LM("local/...", engine=...)``. dspy.LM keeps what it owns (the disk cache,
retries, ``n > 1`` by calling the engine n times, history); the engine owns one generation: chat template,
max_tokens, temperature/top-p/top-k, stop strings, seed, usage counts.

With ``constrain=True`` the engine honours ``response_format={"type": "json_schema", ...}`` (what dspy.JSONAdapter
sends when an LM declares ``supports_response_schema``) by constrained decoding with llmlab.structured: a 135M model
then always returns JSON the adapter can parse, with Literal fields restricted to their labels.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from llmlab import models, sampling, structured, validate

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch a cost map at import otherwise

import dspy  # noqa: E402
from dspy.clients.engines.base import validate_request  # noqa: E402
from dspy.lm15 import Message, Request, Response, TextPart, Usage  # noqa: E402
from dspy.utils.exceptions import AdapterParseError  # noqa: E402

# a free-text JSON field (e.g. ChainOfThought's reasoning) may run this long: max_tokens, not the schema, ends it.
# It was 160: 25 of 40 arithmetic reasonings were cut mid-sum and the model then answered the partial number.
MAX_STRING_LENGTH = 2000


def check_chat_template(tokenizer) -> None:
    """Raise ValueError unless the tokenizer has a chat template (an instruct model's)."""
    if not getattr(tokenizer, "chat_template", None):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ValueError(f"tokenizer must have a chat template (tokenizer.chat_template), got None for {name!r}: "
                         f"use an instruct model's tokenizer or set tokenizer.chat_template")


def request_messages(request: Request) -> list[dict]:
    """The request as chat-template messages [{'role', 'content'}] (system first; text parts only)."""
    out = []
    if request.system is not None:
        system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
        out.append({"role": "system", "content": system})
    for i, m in enumerate(request.messages):
        text = m.text
        if text is None:
            raise ValueError(f"request.messages[{i}] must hold text only for a local model, got parts "
                             f"{[type(p).__name__ for p in m.parts]}")
        out.append({"role": m.role, "content": text})
    return out


def schema_constraint(response_format: dict | None, max_string_length: int = MAX_STRING_LENGTH):
    """A structured.json_schema_constraint constraint for a json_schema response_format (None when there is no schema).

    Keeps the subset llmlab.structured decodes: enum (a Literal field), string, integer and number properties.
    """
    if not response_format or response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("schema") or {}
    subset: dict[str, Any] = {"type": "object", "properties": {}}
    for name, prop in (schema.get("properties") or {}).items():
        if "enum" in prop:
            subset["properties"][name] = {"enum": [str(v) for v in prop["enum"]]}
        elif prop.get("type") == "string":
            subset["properties"][name] = {"type": "string", "maxLength": max_string_length}
        elif prop.get("type") in ("integer", "number"):
            subset["properties"][name] = {"type": prop["type"]}
        else:
            raise ValueError(f"response_format property {name!r} must be a string, integer, number or enum for "
                             f"constrained decoding, got {prop!r}")
    return structured.json_schema_constraint(subset)


def _request_key(messages: list[dict], config) -> str:
    """A stable digest of what was asked (messages and config), for per-request seeds."""
    blob = json.dumps([messages, repr(config)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _stop_chooser(tokenizer, stop: tuple[str, ...], settings: sampling.SamplingSettings, eos: int):
    """A sampling.decode `choose` function: the default pick, but EOS once the text holds a stop string."""

    def choose(token_ids: list[int], logits: torch.Tensor, processed: torch.Tensor, gen: torch.Generator) -> int:
        if token_ids and any(s in tokenizer.decode(token_ids, skip_special_tokens=True) for s in stop):
            return eos
        return sampling.pick_token(processed, settings.greedy, gen)

    return choose


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Text up to the first stop string (the stop itself removed) and whether one was found."""
    cuts = [text.find(s) for s in stop if s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)


class LocalEngine:
    """A dspy engine: one generation from a local causal LM per complete(Request) call.

    Deterministic: the seed of a call is derived from (seed, the request, how many times this exact request was
    asked before), so n > 1 (dspy.LM calls complete n times) gives different samples and a re-run gives the same ones.
    """

    supports_function_calling = False
    supports_reasoning = False

    def __init__(self, model, tokenizer, constrain: bool = True, seed: int = 0, default_max_tokens: int = 128,
                 max_string_length: int = MAX_STRING_LENGTH):
        check_chat_template(tokenizer)
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer must define eos_token_id, got None")
        self.model, self.tokenizer = model, tokenizer
        self.constrain = bool(constrain)
        self.seed = validate.integer("seed", seed)
        self.default_max_tokens = validate.positive_int("default_max_tokens", default_max_tokens)
        self.max_string_length = validate.integer("max_string_length", max_string_length, 1,
                                                  structured.MAX_STRING_LENGTH)
        self._asked: Counter = Counter()
        self.calls = 0

    @property
    def supports_response_schema(self) -> bool:
        """Whether dspy.JSONAdapter should send a json_schema response_format (only when we enforce it)."""
        return self.constrain

    @property
    def supported_params(self) -> tuple[str, ...]:
        """OpenAI-style parameters this engine honours."""
        base = ("max_tokens", "temperature", "top_p", "top_k", "stop", "seed")
        return base + ("response_format",) if self.constrain else base

    def encode(self, messages: list[dict]) -> torch.Tensor:
        """Prompt ids (1, seq) through the chat template; a final assistant message is continued (prefill)."""
        prefill = messages[-1]["role"] == "assistant"
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=not prefill,
                                                  continue_final_message=prefill, return_tensors="pt",
                                                  return_dict=True)["input_ids"]

    def complete(self, request: Request) -> Response:
        """Generate one reply for a dspy.lm15.Request."""
        validate_request(request)
        config = request.config
        messages = request_messages(request)
        ids = self.encode(messages)
        max_tokens = config.max_tokens or self.default_max_tokens
        settings = sampling.SamplingSettings(temperature=config.temperature if config.temperature is not None else 0.0,
                                             top_k=config.top_k or 0, top_p=config.top_p or 1.0)
        key = _request_key(messages, config)
        seed = (config.seed if config.seed is not None else self.seed) * 1_000_003 + self._asked[key]
        self._asked[key] += 1
        self.calls += 1
        constraint = schema_constraint(config.response_format, self.max_string_length) if self.constrain else None
        if constraint is not None:
            text = structured.generate_constrained(self.model, self.tokenizer, ids, constraint, max_tokens, settings,
                                                   1, seed)[0]
            finished = constraint.is_complete(text)
            n_out = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) + int(finished)
        else:
            eos = self.tokenizer.eos_token_id
            choose = _stop_chooser(self.tokenizer, config.stop, settings, eos) if config.stop else None
            gen = sampling.decode(self.model, ids, max_tokens, settings, 1, seed, eos_token_id=eos, choose=choose)[0]
            text, stopped = cut_at_stop(self.tokenizer.decode(gen.token_ids, skip_special_tokens=True), config.stop)
            finished = stopped or (bool(gen.token_ids) and gen.token_ids[-1] == eos)
            n_out = len(gen.token_ids)
        return Response(id=None, model=request.model, message=Message.assistant([TextPart(text)]),
                        finish_reason="stop" if finished else "length",
                        usage=Usage(input_tokens=int(ids.shape[1]), output_tokens=n_out))

    def stream(self, request: Request):
        """One-shot stream: the full reply as events (dspy's streaming contract)."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release: the model belongs to the caller."""


def model_label(model) -> str:
    """A short name of the model's weights (its folder name, else its class name)."""
    path = getattr(getattr(model, "config", None), "name_or_path", "") or ""
    return Path(path).name or type(model).__name__


def local_lm(model, tokenizer, constrain: bool = True, max_tokens: int = 64, temperature: float = 0.0,
             n: int = 1, seed: int = 0, cache: bool = True, name: str | None = None) -> dspy.LM:
    """dspy.LM("local/<model>[+json]", engine=LocalEngine(...)) with checked arguments.

    The engine's settings are part of the model string so dspy's disk cache never mixes a constrained engine's
    replies with an unconstrained one's.
    """
    validate.integer("max_tokens", max_tokens, low=1)
    validate.number("temperature", temperature, 0.0, 2.0)
    validate.positive_int("n", n)
    engine = LocalEngine(model, tokenizer, constrain=constrain, seed=seed)
    label = name or model_label(model)
    validate.text("name", label)
    model_string = f"local/{label}{'+json' if constrain else ''}-seed{seed}"
    return dspy.LM(model_string, engine=engine, max_tokens=max_tokens, temperature=temperature, n=n, cache=cache,
                   num_retries=0)


def minilm_embedder() -> dspy.Embedder:
    """A dspy.Embedder over all-MiniLM-L6-v2 (offline, unit-length vectors), e.g. for dspy.KNNFewShot."""
    from llmlab.retrieval import dense

    encoder = dense.load_encoder()
    return dspy.Embedder(lambda texts: dense.embed(encoder, texts), caching=False)


@contextlib.contextmanager
def quiet():
    """Hide what DSPy prints per call (KNNFewShot compiles a BootstrapFewShot, progress bar and all, per input)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def cache_dir() -> Path:
    """Where dspy's disk cache lives for llmlab: $LLMLAB_HOME/dspy_cache."""
    return models.home() / "dspy_cache"


def configure_cache(path: str | Path | None = None, enabled: bool = True) -> Path:
    """Point dspy's on-disk response cache at $LLMLAB_HOME/dspy_cache (or `path`); returns the folder."""
    folder = Path(path) if path is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dspy.configure_cache(enable_disk_cache=enabled, enable_memory_cache=enabled, disk_cache_dir=str(folder))
    return folder


def drop_incomplete_demos(program) -> int:
    """Remove every demo that lacks a field of its predictor's signature; returns how many were removed.

    DSPy formats such a demo with "Not supplied for this particular example." in the missing field (a labeled demo
    has no ChainOfThought reasoning), and a small model copies that sentence as its own reasoning. Call it after
    compiling, or compile with max_labeled_demos=0 (bootstrapped traces only), or give demos with reasoning.
    """
    if not hasattr(program, "named_predictors"):
        raise TypeError(f"program must be a dspy.Module, got {type(program).__name__}")
    removed = 0
    for _, predictor in program.named_predictors():
        fields = predictor.signature.fields
        keep = [d for d in predictor.demos if all(d.get(k) is not None for k in fields)]
        removed += len(predictor.demos) - len(keep)
        predictor.demos = keep
    return removed


# ---------------------------------------------------------------- scoring a program per example


def as_examples(rows, input_key: str = "text", output_key: str = "label", input_name: str = "message",
                output_name: str = "team") -> list:
    """dspy.Example objects (inputs marked) from task rows {'text', 'label'}."""
    validate.non_empty("rows", rows)
    return [dspy.Example(**{input_name: r[input_key], output_name: r[output_key]}).with_inputs(input_name)
            for r in rows]


def evaluate_program(program, examples, metric) -> tuple[list[float], int]:
    """Per-example metric scores of a dspy program (a reply the adapter cannot parse scores 0) and the parse failures.

    Per-example scores (not only the mean) are what a paired bootstrap of a before/after difference needs.
    """
    validate.non_empty("examples", examples)
    if not callable(metric):
        raise TypeError(f"metric must be a function (example, prediction, trace=None) -> number, "
                        f"got {type(metric).__name__}")
    scores, failures = [], 0
    for i, example in enumerate(examples):
        try:
            prediction = program(**example.inputs())
        except AdapterParseError:
            failures += 1
            scores.append(0.0)
            continue
        value = metric(example, prediction)
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or math.isnan(value):
            raise TypeError(f"metric must return a number (int, float or bool), got {type(value).__name__} "
                            f"{value!r:.40} for examples[{i}]")
        scores.append(float(value))
    return scores, failures
