"""llmlab.serving.protocol: the server's door validates every field and names it, the range and the value."""

import json

import pytest

from llmlab.serving import protocol as P

VOCAB, POSITIONS = 259, 512


def _parse(body):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return P.parse_generate(raw, VOCAB, POSITIONS)


def test_a_good_body_parses_with_the_default_budget():
    assert _parse({"prompt_ids": [0, 5, 258], "max_new_tokens": 3}) == ([0, 5, 258], 3)
    assert _parse({"prompt_ids": [7]}) == ([7], P.DEFAULT_MAX_NEW_TOKENS)
    assert _parse({"prompt_ids": [1] * 500, "max_new_tokens": 12}) == ([1] * 500, 12)  # exactly fills the cache


@pytest.mark.parametrize("body, field, words", [
    ({"prompt_ids": [1_000_000_000]}, "prompt_ids", ["prompt_ids[0]", "[0, 258]", "1000000000"]),  # issue 30
    ({"prompt_ids": [3, -1]}, "prompt_ids", ["prompt_ids[1]", "[0, 258]", "-1"]),  # issue 30
    ({"prompt_ids": [1.5, 2.0]}, "prompt_ids", ["prompt_ids[0]", "int", "1.5"]),  # issue 30
    ({"prompt_ids": [2.0]}, "prompt_ids", ["prompt_ids[0]", "int", "2.0"]),
    ({"prompt_ids": [259]}, "prompt_ids", ["[0, 258]", "259"]),
    ({"prompt_ids": [True, 1]}, "prompt_ids", ["prompt_ids[0]", "int", "True"]),
    ({"prompt_ids": [[1, 2], [3]]}, "prompt_ids", ["prompt_ids[0]", "int", "[1, 2]"]),
    ({"prompt_ids": "1 2 3"}, "prompt_ids", ["list of int", "str", "'1 2 3'"]),
    ({"prompt_ids": {"a": 1}}, "prompt_ids", ["list of int", "dict"]),
    ({"prompt_ids": None}, "prompt_ids", ["list of int", "NoneType"]),
    ({"prompt_ids": []}, "prompt_ids", ["1 to 511", "empty"]),
    ({"prompt_ids": [1] * 512}, "prompt_ids", ["1 to 511", "512"]),
    ({"max_new_tokens": 3}, "prompt_ids", ["required", "[0, 258]"]),
    ({"prompt_ids": [1], "max_new_tokens": 0}, "max_new_tokens", ["[1, 511]", "0"]),
    ({"prompt_ids": [1] * 10, "max_new_tokens": 503}, "max_new_tokens", ["[1, 502]", "503", "cache"]),
    ({"prompt_ids": [1], "max_new_tokens": 2.0}, "max_new_tokens", ["int", "2.0"]),
    ({"prompt_ids": [1], "max_new_tokens": False}, "max_new_tokens", ["int", "False"]),
    ({"prompt_ids": [1], "temperature": 0.5}, "temperature", ["unknown field", "prompt_ids"]),
    ([1, 2], "body", ["JSON object", "list"]),
    (b'{"prompt_ids": [1, 2', "body", ["invalid JSON"]),
    (b'{"prompt_ids": [NaN]}', "body", ["invalid JSON", "NaN"]),
    (b"[" * 5000 + b"]" * 5000, "body", ["JSON"]),
    (b"\xff\xfe{}", "body", ["UTF-8"]),
])
def test_every_rejection_is_a_400_naming_field_range_and_value(body, field, words):
    with pytest.raises(P.RequestError) as info:
        _parse(body)
    err = info.value
    assert err.status == 400 and err.field == field and err.body() == {"error": err.message, "field": field}
    for word in words:
        assert word in err.message, (word, err.message)


def test_a_huge_value_is_cut_in_the_message():
    with pytest.raises(P.RequestError) as info:
        _parse({"prompt_ids": "x" * 100_000})
    assert len(info.value.message) < 200


@pytest.mark.parametrize("header, status, words", [(None, 411, ["required"]), ("abc", 400, ["int", "abc"]),
                                                   ("-1", 400, [">= 0", "-1"]), ("1025", 413, ["1024", "1025"])])
def test_content_length(header, status, words):
    with pytest.raises(P.RequestError) as info:
        P.check_content_length(header, 1024)
    assert info.value.status == status and all(word in info.value.message for word in words)
    assert P.check_content_length("1024", 1024) == 1024


def test_check_prompt_accepts_a_tuple_and_names_its_field():
    assert P.check_prompt((1, 2), VOCAB, POSITIONS) == [1, 2]
    with pytest.raises(ValueError, match=r"prompt\[0\] must be an int in \[0, 258\], got 300"):
        P.check_prompt([300], VOCAB, POSITIONS, field="prompt")
