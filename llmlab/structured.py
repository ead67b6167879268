"""Constrained decoding by masking logits: one of a list of choices, a regular expression, a small JSON schema."""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import regex
import torch

from llmlab import sampling

STRING_CHARS = r'[ !#-\[\]-~]'  # printable ASCII without '"' and '\': a JSON string body needing no escapes
INTEGER = r"-?(0|[1-9][0-9]{0,5})"
NUMBER = INTEGER + r"(\.[0-9]{1,4})?"
MAX_STRING_LENGTH = 4000  # the longest string field a schema may ask for (maxLength)


class Choice:
    """Output must be exactly one of a list of strings.

    >>> Choice(["yes", "no"]).is_prefix("ye"), Choice(["yes", "no"]).is_complete("ye")
    (True, False)
    """

    def __init__(self, choices: Sequence[str]):
        items = list(choices) if not isinstance(choices, str) else None
        if not items or not all(isinstance(c, str) and c for c in items):
            raise ValueError(f"choices must be a non-empty list of non-empty str, got {choices!r}")
        self.choices = items

    def is_prefix(self, text: str) -> bool:
        """Whether text can still grow into a valid output."""
        return any(c.startswith(text) for c in self.choices)

    def is_complete(self, text: str) -> bool:
        """Whether text is a valid output."""
        return text in self.choices

    def __repr__(self) -> str:
        return f"Choice({self.choices!r})"


class Regex:
    """Output must match a regular expression in full (checked on prefixes with partial matching).

    >>> Regex(r"[0-9]+").is_prefix("12"), Regex(r"[0-9]+").is_prefix("1a")
    (True, False)
    """

    def __init__(self, pattern: str):
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"pattern must be a non-empty regular expression str, got {pattern!r}")
        try:
            self.compiled = regex.compile(pattern)
        except regex.error as exc:
            raise ValueError(f"pattern must be a valid regular expression, got {pattern!r} ({exc})") from exc
        self.pattern = pattern

    def is_prefix(self, text: str) -> bool:
        """Whether text can still grow into a full match."""
        return self.compiled.fullmatch(text, partial=True) is not None

    def is_complete(self, text: str) -> bool:
        """Whether text matches in full."""
        return self.compiled.fullmatch(text) is not None

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _check_value(name: str, prop) -> None:
    """Validate one property's schema: an enum, string, integer, number, nested object or array of those."""
    if not isinstance(prop, dict):
        raise ValueError(f"schema property {name!r} must be a dict, got {prop!r}")
    if "enum" in prop:
        values = prop["enum"]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"schema property {name!r} enum must be a non-empty list of str, got {values!r}")
    elif prop.get("type") == "object":
        _check_schema(prop)
    elif prop.get("type") == "array":
        _check_value(name + "[]", prop.get("items"))
        low, high = prop.get("minItems", 1), prop.get("maxItems", 3)
        if not isinstance(low, int) or not isinstance(high, int) or not 0 <= low <= high <= 10:
            raise ValueError(f"schema property {name!r} minItems/maxItems must be ints with 0 <= min <= max <= 10, "
                             f"got {low!r} and {high!r}")
    elif prop.get("type") not in ("string", "integer", "number"):
        raise ValueError(f"schema property {name!r} type must be one of string, integer, number, object, array "
                         f"(or an enum), got {prop.get('type')!r}")
    max_length = prop.get("maxLength", 20)
    if prop.get("type") == "string" and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                         or not 1 <= max_length <= MAX_STRING_LENGTH):
        raise ValueError(f"schema property {name!r} maxLength must be an int in [1, {MAX_STRING_LENGTH}], "
                         f"got {max_length!r}")


def _check_schema(schema: dict) -> dict:
    """Validate the supported JSON-schema subset; returns the properties dict."""
    if not isinstance(schema, dict) or schema.get("type") != "object" \
            or not isinstance(schema.get("properties"), dict) \
            or not schema["properties"]:
        raise ValueError(f"schema must be {{'type': 'object', 'properties': {{...}}}} with at least one property, "
                         f"got {schema!r}")
    for name, prop in schema["properties"].items():
        _check_value(name, prop)
    return schema["properties"]


def _value_regex(prop: dict) -> str:
    """The regular expression of one value of an already-checked property schema."""
    if "enum" in prop:
        return "(" + "|".join(regex.escape(json.dumps(v)) for v in prop["enum"]) + ")"
    kind = prop["type"]
    if kind == "object":
        return schema_to_regex(prop)
    if kind == "array":
        item = "(" + _value_regex(prop["items"]) + ")"
        low, high = prop.get("minItems", 1), prop.get("maxItems", 3)
        items = item + f"(, {item}){{{max(low - 1, 0)},{high - 1}}}" if high else ""
        return r"\[" + (f"({items})?" if low == 0 and high else items) + r"\]"
    if kind == "string":
        return f'"{STRING_CHARS}{{{prop.get("minLength", 0)},{prop.get("maxLength", 20)}}}"'
    return INTEGER if kind == "integer" else NUMBER


def schema_to_regex(schema: dict) -> str:
    """A regular expression for compact JSON objects of the schema (fields in order, ', ' and ': ' separators)."""
    fields = [regex.escape(json.dumps(name)) + ": " + _value_regex(prop)
              for name, prop in _check_schema(schema).items()]
    return r"\{" + ", ".join(fields) + r"\}"


def json_schema_constraint(schema: dict) -> Regex:
    """Constraint for a JSON object following a small schema (string, integer, number, enum, object, array)."""
    return Regex(schema_to_regex(schema))


def _value_ok(item, prop: dict) -> bool:
    """Whether a parsed JSON value follows an already-checked property schema."""
    if "enum" in prop:
        return item in prop["enum"]
    kind = prop["type"]
    if kind == "object":
        return _object_ok(item, prop["properties"])
    if kind == "array":
        return isinstance(item, list) and prop.get("minItems", 1) <= len(item) <= prop.get("maxItems", 3) \
            and all(_value_ok(x, prop["items"]) for x in item)
    if kind == "string":
        return isinstance(item, str)
    if kind == "integer":
        return isinstance(item, int) and not isinstance(item, bool)
    return isinstance(item, (int, float)) and not isinstance(item, bool)


def _object_ok(value, properties: dict) -> bool:
    """Whether a parsed JSON value is an object with exactly these properties, each valid."""
    return isinstance(value, dict) and set(value) == set(properties) \
        and all(_value_ok(value[name], prop) for name, prop in properties.items())


def validate_json(text: str, schema: dict) -> bool:
    """Whether text is one JSON object with exactly the schema's fields, each of the right type (nested too).

    >>> validate_json('{"qty": 2}', {"type": "object", "properties": {"qty": {"type": "integer"}},
    ...                               "required": ["qty"]})
    True
    """
    properties = _check_schema(schema)
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return False
    return _object_ok(value, properties)


def first_json_object(text: str) -> str:
    """The first {...} in text that parses as a JSON object (braces inside strings are handled), else ''.

    For lenient checks of free-form replies: skips non-JSON braces such as '{not json}' and finds an object
    inside a Markdown fence or after prose.

    >>> first_json_object('Sure: {"a": 1} and more')
    '{"a": 1}'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            value, end = None, start
        if isinstance(value, dict):
            return text[start:end]
        start = text.find("{", start + 1)
    return ""


def parse_json_object(text: str) -> dict | None:
    """The first JSON object in a free-form reply, parsed, or None when there is none.

    >>> parse_json_object('Sure: {"a": [1, 2]}'), parse_json_object("no json")
    ({'a': [1, 2]}, None)
    """
    found = first_json_object(text)
    return json.loads(found) if found else None


@dataclass
class TokenIndex:
    """Every token's text, grouped by first character, so a mask only checks plausible tokens."""

    texts: list[str | None]
    by_first_char: dict[str, list[int]]
    eos_ids: set[int]

    @property
    def vocab_size(self) -> int:
        """Number of token ids covered."""
        return len(self.texts)


# token indexes live as long as their tokenizer (weak keys), so a notebook that reloads tokenizers does not leak
_INDEXES: "weakref.WeakKeyDictionary[object, dict[int, TokenIndex]]" = weakref.WeakKeyDictionary()
_MASK_CACHE_SIZE = 512


def token_index(tokenizer, vocab_size: int | None = None) -> TokenIndex:
    """Text of every token id (None for special or partial-UTF-8 tokens), built once per tokenizer and vocab size."""
    size = vocab_size or len(tokenizer)
    per_tokenizer = _INDEXES.setdefault(tokenizer, {})
    if size not in per_tokenizer:
        special = set(tokenizer.all_special_ids)
        texts: list[str | None] = []
        groups: dict[str, list[int]] = {}
        for i in range(size):
            text = None if i in special or i >= len(tokenizer) else \
                tokenizer.decode([i], clean_up_tokenization_spaces=False)
            if not text or "\ufffd" in text:
                text = None
            texts.append(text)
            if text:
                groups.setdefault(text[0], []).append(i)
        eos = tokenizer.eos_token_id
        per_tokenizer[size] = TokenIndex(texts, groups, {eos} if eos is not None else set())
    return per_tokenizer[size]


def allowed_tokens(constraint, text: str, index: TokenIndex) -> torch.Tensor:
    """Boolean mask (vocab,) of tokens that keep `text` a valid prefix; EOS is allowed once text is complete.

    Masks are cached per constraint and text (least recently used first out, 512 kept), so samples that share a
    prefix, and greedy runs, pay for each state once.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    cache = constraint.__dict__.setdefault("_mask_cache", OrderedDict())
    key = (id(index), text)
    if key in cache:
        cache.move_to_end(key)
        return cache[key].clone()
    mask = _compute_mask(constraint, text, index)
    cache[key] = mask
    if len(cache) > _MASK_CACHE_SIZE:
        cache.popitem(last=False)
    return mask.clone()


def _compute_mask(constraint, text: str, index: TokenIndex) -> torch.Tensor:
    """allowed_tokens without the cache: first characters prune whole groups of tokens."""
    mask = torch.zeros(index.vocab_size, dtype=torch.bool)
    for char, ids in index.by_first_char.items():
        if constraint.is_prefix(text + char):
            for i in ids:
                if index.texts[i] == char or constraint.is_prefix(text + index.texts[i]):
                    mask[i] = True
    if constraint.is_complete(text):
        mask[list(index.eos_ids)] = True
    return mask


def _text_of(index: TokenIndex, token_ids: Sequence[int]) -> str:
    """Concatenated text of generated tokens, without EOS."""
    return "".join(index.texts[i] or "" for i in token_ids if i not in index.eos_ids)


def _valid(constraint, text: str, token: int, index: TokenIndex) -> bool:
    """Whether appending token keeps text valid (EOS only once text is complete)."""
    if token in index.eos_ids:
        return constraint.is_complete(text)
    piece = index.texts[token] if token < index.vocab_size else None
    return piece is not None and constraint.is_prefix(text + piece)


def choose_token(constraint, text: str, index: TokenIndex, logits: torch.Tensor, processed: torch.Tensor,
                 greedy: bool, generator: torch.Generator, tries: int = 32, shortlist: int = 64) -> int:
    """Pick the next token among those the constraint allows; the kit's one constrained pick (structured output,
    agents and the DSPy engine all decode through it).

    Greedy: the most likely allowed token (the `shortlist` favourites first, then allowed_tokens' mask, which is faster
    than walking the sorted vocabulary when the favourites are not allowed, as on a forced JSON key). Sampling: draw
    from the processed distribution and redraw on a disallowed token (the same as sampling the masked, renormalized
    distribution); if no allowed token survives top-k/top-p/min-p, draw from the full mask with the model's own
    probabilities.
    """
    if greedy:
        for token in logits.topk(min(shortlist, logits.numel())).indices.tolist():
            if _valid(constraint, text, token, index):
                return token
        allowed = allowed_tokens(constraint, text, index)
        return int(logits.masked_fill(~allowed, float("-inf")).argmax()) if allowed.any() else min(index.eos_ids)
    weights = processed.softmax(-1).clone()
    for _ in range(tries):
        if not weights.sum() > 0:
            break
        token = int(torch.multinomial(weights, 1, generator=generator))
        if _valid(constraint, text, token, index):
            return token
        weights[token] = 0.0
    allowed = allowed_tokens(constraint, text, index)
    if not allowed.any():
        return min(index.eos_ids)  # dead end: stop; the output is then reported invalid
    return int(torch.multinomial(logits.masked_fill(~allowed, float("-inf")).softmax(-1), 1, generator=generator))


def generate_constrained(model, tokenizer, input_ids: torch.Tensor, constraint, max_new_tokens: int = 64,
             settings: sampling.SamplingSettings = sampling.SamplingSettings(temperature=0), num_samples: int = 1,
             seed: int = 0) -> list[str]:
    """Generate num_samples outputs, each token restricted to what the constraint allows."""
    if not hasattr(constraint, "is_prefix") or not hasattr(constraint, "is_complete"):
        raise TypeError(f"constraint must be a Choice or Regex (json_schema_constraint returns a Regex), got "
                        f"{type(constraint).__name__}")
    vocab = model.get_output_embeddings().weight.shape[0]
    index = token_index(tokenizer, vocab)
    if not index.eos_ids:
        raise ValueError("tokenizer must define eos_token_id for constrained generation, got None")

    def choose(token_ids: list[int], logits: torch.Tensor, processed: torch.Tensor, gen: torch.Generator) -> int:
        return choose_token(constraint, _text_of(index, token_ids), index, logits, processed, settings.greedy, gen)

    gens = sampling.decode(model, input_ids, max_new_tokens, settings, num_samples, seed,
                           eos_token_id=sorted(index.eos_ids), choose=choose)
    return [_text_of(index, g.token_ids) for g in gens]


def valid_rate(outputs: Sequence[str], constraint) -> float:
    """Share of outputs the constraint accepts as complete."""
    if not outputs:
        raise ValueError("outputs must hold at least one string, got []")
    return sum(bool(constraint.is_complete(o)) for o in outputs) / len(outputs)


def choice_mask(token_texts: Sequence[str], generated: str, choices: Sequence[str]) -> list[bool]:
    """For each token text, whether generated + token is still a prefix of one of the choices."""
    constraint = Choice(choices)
    if not isinstance(generated, str):
        raise TypeError(f"generated must be a str, got {type(generated).__name__}")
    return [bool(t) and constraint.is_prefix(generated + t) for t in token_texts]
