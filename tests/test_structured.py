"""Constrained decoding: masks, JSON-schema regexes, and 100% valid outputs over 50 sampled generations."""

from __future__ import annotations

import json

import pytest
import torch

from llmlab import sampling, structured
from llmlab.kit import fixtures
from llmlab.sampling import SamplingSettings

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"},
                                           "score": {"type": "number"}, "city": {"enum": ["Paris", "Oslo"]}}}
PROMPT = torch.tensor([[1, 72, 101, 108, 108, 111]])


def test_choice_and_regex_prefixes():
    c = structured.Choice(["yes", "no", "nope"])
    assert c.is_prefix("no") and c.is_complete("no") and c.is_prefix("nop") and not c.is_prefix("x")
    r = structured.Regex(r"[0-9]{2}-[a-z]+")
    assert r.is_prefix("1") and r.is_prefix("12-") and not r.is_prefix("1a") and not r.is_complete("12-")
    assert r.is_complete("12-ab")


def test_schema_regex_accepts_json_dumps_and_rejects_wrong_types():
    pattern = structured.json_schema_constraint(SCHEMA)
    good = {"name": "Ada", "age": 36, "score": -1.5, "city": "Oslo"}
    assert pattern.is_complete(json.dumps(good))
    assert structured.validate_json(json.dumps(good), SCHEMA)
    for bad in [dict(good, age="36"), dict(good, city="Rome"), {"name": "Ada"}, dict(good, extra=1)]:
        assert not pattern.is_complete(json.dumps(bad))
        assert not structured.validate_json(json.dumps(bad), SCHEMA)
    assert not structured.validate_json("{not json", SCHEMA)


def test_first_json_object_finds_a_fenced_object():
    assert structured.first_json_object('Sure!\n```json\n{"a": {"b": 1}}\n```') == '{"a": {"b": 1}}'
    assert structured.first_json_object("no object here") == ""


@pytest.mark.parametrize("text,expected", [
    ('{"a": "}"} trailing', '{"a": "}"}'),                       # a brace inside a string
    ('{"a": "say \\"{hi}\\""}', '{"a": "say \\"{hi}\\""}'),     # escaped quotes and braces in a string
    ('{not json} then {"ok": 1}', '{"ok": 1}'),                 # skips braces that are not JSON
    ('prose {"a": {"b": [1, {"c": 2}]}} more }', '{"a": {"b": [1, {"c": 2}]}}'),
    ('{"a": 1', ""),                                            # never closed
    ("} {", ""),
    ('[{"a": 1}]', '{"a": 1}'),
])
def test_first_json_object_is_robust(text, expected):
    assert structured.first_json_object(text) == expected
    if expected:
        assert isinstance(json.loads(expected), dict)


def test_first_json_object_rejects_non_str():
    with pytest.raises(TypeError, match="text must be a str"):
        structured.first_json_object(None)


def test_token_index_cache_is_weak_and_masks_are_cached(tiny):
    import gc

    tokenizer = fixtures.tiny_tokenizer()
    index = structured.token_index(tokenizer)
    assert structured.token_index(tokenizer) is index
    constraint = structured.Choice(["cat", "cow"])
    first = structured.allowed_tokens(constraint, "c", index)
    first[:] = False  # callers get a copy: changing it does not poison the cache
    assert structured.allowed_tokens(constraint, "c", index).sum() == 2
    assert len(constraint._mask_cache) == 1
    count = len(structured._INDEXES)
    del tokenizer, index
    gc.collect()
    assert len(structured._INDEXES) == count - 1


def test_old_names_are_gone():
    assert not hasattr(structured, "JsonSchema") and not hasattr(structured, "generate")


def test_allowed_tokens_mask_on_tiny_tokenizer(tiny):
    _, tokenizer = tiny
    index = structured.token_index(tokenizer)
    mask = structured.allowed_tokens(structured.Choice(["cat", "cow"]), "c", index)
    allowed = {tokenizer.decode([i]) for i in torch.nonzero(mask).flatten().tolist()}
    assert allowed == {"a", "o"}
    done = structured.allowed_tokens(structured.Choice(["cat"]), "cat", index)
    assert torch.nonzero(done).flatten().tolist() == [tokenizer.eos_token_id]


@pytest.mark.parametrize("constraint", [
    structured.Choice(["red", "green", "blue", "blueish"]),
    structured.Regex(r"[A-Z][a-z]{1,6} [0-9]{1,3}"),
    structured.json_schema_constraint(SCHEMA),
], ids=["choice", "regex", "json"])
def test_fifty_sampled_constrained_generations_are_all_valid(tiny, constraint):
    model, tokenizer = tiny
    outputs = structured.generate_constrained(model, tokenizer, PROMPT, constraint, max_new_tokens=96,
                                              settings=SamplingSettings(temperature=1.0), num_samples=50, seed=0)
    assert len(outputs) == 50
    assert structured.valid_rate(outputs, constraint) == 1.0
    assert len(set(outputs)) > 1  # sampled, not one repeated answer
    if isinstance(constraint, structured.Regex) and constraint.pattern == structured.schema_to_regex(SCHEMA):
        assert all(structured.validate_json(o, SCHEMA) for o in outputs)


def test_unconstrained_tiny_model_is_not_valid(tiny):
    model, tokenizer = tiny
    gens = sampling.sample(model, PROMPT, 20, num_samples=10, seed=0)
    texts = [tokenizer.decode(g.token_ids, skip_special_tokens=True) for g in gens]
    assert structured.valid_rate(texts, structured.json_schema_constraint(SCHEMA)) == 0.0


def test_greedy_constrained_picks_most_likely_allowed_token(tiny):
    model, tokenizer = tiny
    choices = ["ab", "ba", "cc"]
    out = structured.generate_constrained(model, tokenizer, PROMPT, structured.Choice(choices), max_new_tokens=4)[0]
    with torch.no_grad():
        logits = model(PROMPT).logits[0, -1]
    firsts = {c[0]: logits[tokenizer.convert_tokens_to_ids(c[0])].item() for c in choices}
    assert out in choices and out[0] == max(firsts, key=firsts.get)


def test_real_model_choice_regex_and_json(real):
    model, tokenizer = real
    from llmlab.tokens import encode_prompt
    ids = encode_prompt(tokenizer, "Is 'I loved this film' positive or negative?")
    choice = structured.Choice(["positive", "negative"])
    assert structured.generate_constrained(model, tokenizer, ids, choice, 4)[0] in \
        ["positive", "negative"]
    ids = encode_prompt(tokenizer, "In which year did the Berlin wall fall?")
    out = structured.generate_constrained(model, tokenizer, ids, structured.Regex(r"[12][0-9]{3}"), 6)[0]
    assert structured.Regex(r"[12][0-9]{3}").is_complete(out)


@pytest.mark.parametrize("call,message", [
    (lambda: structured.Choice([]), r"choices must be a non-empty list of non-empty str, got \[\]"),
    (lambda: structured.Choice("yes"), r"choices must be a non-empty list of non-empty str, got 'yes'"),
    (lambda: structured.Regex("(ab"), r"pattern must be a valid regular expression, got '\(ab'"),
    (lambda: structured.json_schema_constraint({"type": "array"}), r"schema must be \{'type': 'object'"),
    (lambda: structured.json_schema_constraint({"type": "object", "properties": {"a": {"type": "list"}}}),
     r"schema property 'a' type must be one of string, integer, number, object, array \(or an enum\), got 'list'"),
    (lambda: structured.valid_rate([], structured.Choice(["a"])), r"outputs must hold at least one string"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_choice_mask():
    texts = ["y", "ye", "yes", "n", "o", "x", ""]
    assert structured.choice_mask(texts, "", ["yes", "no"]) == [True, True, True, True, False, False, False]
    assert structured.choice_mask(texts, "n", ["yes", "no"]) == [False, False, False, False, True, False, False]


def _walk_sorted_vocabulary(constraint, text, index, logits):
    """The greedy rule choose_token had before issue 24 (and still teaches): walk the vocabulary by logit."""
    for token in logits.argsort(descending=True).tolist():
        if structured._valid(constraint, text, token, index):
            return token
    return min(index.eos_ids)


@pytest.mark.parametrize("shortlist", [1, 4, 64])
def test_greedy_choose_token_is_the_most_likely_allowed_token(tiny, shortlist):
    # agreement test: the shortlist + mask speed-up (formerly the DSPy engine's own rule) picks what the full walk picks
    _, tokenizer = tiny
    index = structured.token_index(tokenizer)
    constraint = structured.json_schema_constraint(SCHEMA)
    gen = torch.Generator().manual_seed(0)
    for seed in range(5):
        logits = torch.randn(index.vocab_size, generator=torch.Generator().manual_seed(seed))
        for text in ("", '{"name": "', '{"name": "ab", "age": 4'):
            want = _walk_sorted_vocabulary(constraint, text, index, logits)
            got = structured.choose_token(constraint, text, index, logits, logits, True, gen, shortlist=shortlist)
            assert got == want


def test_every_decoder_picks_the_next_token_with_sampling_pick_token(tiny):
    processed = torch.tensor([0.0, 3.0, 1.0, 2.9])
    assert sampling.pick_token(processed, True, torch.Generator()) == 1
    draws = [sampling.pick_token(processed, False, torch.Generator().manual_seed(s)) for s in range(40)]
    again = [sampling.pick_token(processed, False, torch.Generator().manual_seed(s)) for s in range(40)]
    assert draws == again and set(draws) > {1}
    # the DSPy engine's constrained path is structured.generate_constrained itself, through sampling.decode
    from dspy.lm15 import Config, Message, Request

    from llmlab import dspy_lm

    model, tokenizer = tiny
    engine = dspy_lm.LocalEngine(model, tokenizer, constrain=True, seed=2)
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {
        "team": {"enum": ["billing", "shipping"], "type": "string", "title": "Team"}}}}
    request = Request(model="local/tiny", messages=(Message.user("hi"),), system="be brief",
                      config=Config(max_tokens=40, temperature=1.0, response_format=fmt))
    text = engine.complete(request).text
    ids = engine.encode(dspy_lm.request_messages(request))
    seed = 2 * 1_000_003
    settings = SamplingSettings(temperature=1.0)
    constraint = dspy_lm.schema_constraint(fmt, engine.max_string_length)
    assert text == structured.generate_constrained(model, tokenizer, ids, constraint, 40, settings, 1, seed)[0]
    assert not hasattr(dspy_lm, "constrained_generate")


NESTED = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8}, "address": {
    "type": "object", "properties": {"city": {"enum": ["Paris", "Tokyo"]}, "zip": {"type": "integer"}}}}}
ARRAY = {"type": "object", "properties": {"items": {"type": "array", "maxItems": 2, "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer"}}}}}}


@pytest.mark.parametrize("schema,text,ok", [
    (NESTED, '{"name": "Al", "address": {"city": "Paris", "zip": 75}}', True),
    (NESTED, '{"name": "Al", "address": {"city": "Rome", "zip": 75}}', False),  # not in the enum
    (NESTED, '{"name": "Al", "address": {"city": "Paris"}}', False),  # a nested field missing
    (ARRAY, '{"items": [{"name": "a", "qty": 2}, {"name": "b", "qty": 3}]}', True),
    (ARRAY, '{"items": [{"name": "a", "qty": 2}, {"name": "b", "qty": 3}, {"name": "c", "qty": 1}]}', False),
    (ARRAY, '{"items": []}', False),  # minItems defaults to 1
    (ARRAY, '{"items": [{"name": "a", "qty": "2"}]}', False),  # a string where an integer belongs
])
def test_nested_objects_and_arrays_regex_agrees_with_validate_json(schema, text, ok):
    assert structured.json_schema_constraint(schema).is_complete(text) is ok
    assert structured.validate_json(text, schema) is ok


def test_array_schema_bounds_are_checked():
    bad = {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}, "maxItems": 0,
                                                   "minItems": 1}}}
    with pytest.raises(ValueError, match="minItems/maxItems"):
        structured.json_schema_constraint(bad)


def test_parse_json_object_reads_the_first_object_of_a_free_form_reply():
    assert structured.parse_json_object('Sure! ```json\n{"a": 1, "b": "{x}"}\n``` done') == {"a": 1, "b": "{x}"}
    assert structured.parse_json_object("{not json} and no object") is None
    assert structured.parse_json_object("[1, 2] {\"k\": [3]}") == {"k": [3]}
