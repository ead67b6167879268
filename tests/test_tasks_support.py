"""llmlab.tasks.support: the chapter 10 workload; the system turn is a token prefix of every request."""

import pytest

from llmlab.kit import fixtures
from llmlab.tasks import support


def test_system_turn_is_a_prefix_of_each_request():
    tok = fixtures.tiny_tokenizer()
    if getattr(tok, "chat_template", None) is None:
        pytest.skip("the tiny tokenizer has no chat template")
    prefix = support.system_ids(tok)
    for q in support.QUESTIONS[:3]:
        ids = support.request_ids(tok, q)
        assert ids[:len(prefix)] == prefix and len(ids) > len(prefix)
    assert len(support.request_ids(tok, "hi", with_system=False)) < len(prefix)


def test_system_prompt_text_and_bad_input():
    assert "Northwind Cycles" in support.system_prompt() and len(support.QUESTIONS) >= 16
    with pytest.raises(TypeError, match="question"):
        support.request_ids(None, 3)
