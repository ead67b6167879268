"""The local DSPy engine on the tiny model: chat template, settings, n, stop strings, usage, seeds, bad input."""

from __future__ import annotations

from typing import Literal

import dspy
import pytest
from dspy.lm15 import Config, Message, Request

from llmlab import dspy_lm
from llmlab.kit import fixtures


@pytest.fixture(scope="module")
def engine(tiny):
    model, tok = tiny
    return dspy_lm.LocalEngine(model, tok, seed=1)


def _request(text="hi", **config):
    return Request(model="local/tiny", messages=(Message.user(text),), system="be brief",
                   config=Config(**{"max_tokens": 6, **config}))


def test_request_messages_puts_system_first():
    msgs = dspy_lm.request_messages(_request("hello"))
    assert msgs == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


def test_complete_counts_tokens_and_respects_max_tokens(engine, tiny):
    _, tok = tiny
    response = engine.complete(_request("hello", max_tokens=5))
    prompt = tok.apply_chat_template([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
                                     add_generation_prompt=True, return_dict=True)["input_ids"]
    assert response.usage.input_tokens == len(prompt)
    assert 1 <= response.usage.output_tokens <= 5
    assert response.finish_reason in ("stop", "length")


def test_greedy_is_deterministic_and_sampling_is_seeded(tiny):
    model, tok = tiny
    a = dspy_lm.LocalEngine(model, tok, seed=3)
    b = dspy_lm.LocalEngine(model, tok, seed=3)
    assert a.complete(_request(temperature=0.0)).text == a.complete(_request(temperature=0.0)).text
    first = [a.complete(_request(temperature=1.0, max_tokens=8)).text for _ in range(3)]
    again = [b.complete(_request(temperature=1.0, max_tokens=8)).text for _ in range(3)]
    assert first == again  # the same seed and request order give the same samples
    assert len(set(first)) > 1  # repeated requests (n > 1) are different draws


def test_stop_string_cuts_the_reply(engine):
    free = engine.complete(_request("abc", max_tokens=12, temperature=0.0)).text
    assert len(free) >= 2
    stop = free[1]
    cut = engine.complete(_request("abc", max_tokens=12, temperature=0.0, stop=(stop,))).text
    assert stop not in cut and free.startswith(cut)


def test_cut_at_stop():
    assert dspy_lm.cut_at_stop("a\n\nb", ("\n\n",)) == ("a", True)
    assert dspy_lm.cut_at_stop("abc", ("x",)) == ("abc", False)


def test_response_format_is_enforced(tiny):
    model, tok = tiny
    engine = dspy_lm.LocalEngine(model, tok, constrain=True)
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {
        "team": {"enum": ["billing", "shipping"], "type": "string", "title": "Team"}}}}
    text = engine.complete(_request(max_tokens=40, response_format=fmt)).text
    assert text in ('{"team": "billing"}', '{"team": "shipping"}')


def test_schema_constraint_rejects_nested_objects():
    with pytest.raises(ValueError, match="property 'x'"):
        dspy_lm.schema_constraint({"type": "json_schema", "schema": {"properties": {"x": {"type": "object"}}}})
    assert dspy_lm.schema_constraint(None) is None


def test_dspy_predict_through_the_engine_parses(tiny, tmp_path):
    model, tok = tiny
    dspy_lm.configure_cache(tmp_path, enabled=False)
    lm = dspy_lm.local_lm(model, tok, constrain=True, max_tokens=40, cache=False, name="tiny")

    class Route(dspy.Signature):
        """Route the message."""
        message: str = dspy.InputField()
        team: Literal["billing", "shipping"] = dspy.OutputField()

    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Route)(message="my parcel is late")
    assert pred.team in ("billing", "shipping")
    assert lm.history[-1]["usage"]["prompt_tokens"] > 0 or lm.history[-1]["usage"].get("input_tokens", 0) > 0


def test_n_samples_come_back_as_n_outputs(tiny):
    model, tok = tiny
    lm = dspy_lm.local_lm(model, tok, constrain=False, max_tokens=4, temperature=1.0, n=3, cache=False, name="tiny")
    outputs = lm(messages=[{"role": "user", "content": "hi"}])
    assert len(outputs) == 3


def test_model_string_names_the_engine_settings(tiny):
    model, tok = tiny
    assert dspy_lm.local_lm(model, tok, constrain=True, name="m").model == "local/m+json-seed0"
    assert dspy_lm.local_lm(model, tok, constrain=False, seed=2, name="m").model == "local/m-seed2"


def test_configure_cache_uses_llmlab_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path))
    folder = dspy_lm.configure_cache(enabled=False)
    assert folder == tmp_path / "dspy_cache" and folder.is_dir()


def test_bad_input_is_named(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="n must be an int in \\[1"):
        dspy_lm.local_lm(model, tok, n=0)
    with pytest.raises(ValueError, match="max_tokens must be an int in \\[1"):
        dspy_lm.local_lm(model, tok, max_tokens=-5)
    with pytest.raises(ValueError, match="temperature"):
        dspy_lm.local_lm(model, tok, temperature=3.0)
    bare = fixtures.tiny_tokenizer()
    bare.chat_template = None
    with pytest.raises(ValueError, match="chat template"):
        dspy_lm.LocalEngine(model, bare)
    with pytest.raises(TypeError, match="Request"):
        dspy_lm.LocalEngine(model, tok).complete({"messages": []})


def test_evaluate_program_scores_and_bad_metrics():
    from dspy.utils import DummyLM

    from llmlab.tasks import tickets

    examples = dspy_lm.as_examples([{"text": "my parcel is late", "label": "shipping"},
                                    {"text": "charged twice", "label": "billing"}])
    lm = DummyLM({"parcel": {"team": "shipping"}, "charged": {"team": "account"}})
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        scores, failures = dspy_lm.evaluate_program(tickets.route_program(), examples, tickets.team_metric)
        assert scores == [1.0, 0.0] and failures == 0
        with pytest.raises(TypeError, match="metric must return a number"):
            dspy_lm.evaluate_program(tickets.route_program(), examples, lambda e, p, t=None: "yes")
        with pytest.raises(TypeError, match="metric must be a function"):
            dspy_lm.evaluate_program(tickets.route_program(), examples, "accuracy")
    with pytest.raises(ValueError, match="examples must have at least one item"):
        dspy_lm.evaluate_program(tickets.route_program(), [], tickets.team_metric)
    with pytest.raises(ValueError, match="rows must have at least one item"):
        dspy_lm.as_examples([])


def test_minilm_embedder_gives_unit_vectors():
    vectors = dspy_lm.minilm_embedder()(["my parcel is late", "I was charged twice"])
    assert vectors.shape == (2, 384)
    assert abs(float((vectors ** 2).sum(axis=1).max()) - 1.0) < 1e-4


def test_string_fields_are_no_longer_cut_at_160_characters():
    fmt = {"type": "json_schema", "schema": {"type": "object", "properties": {
        "reasoning": {"type": "string"}, "answer": {"type": "integer"}}}}
    constraint = dspy_lm.schema_constraint(fmt)
    reasoning = "3 bags of 4 is 3 * 4 = 12. " * 20  # 540 characters, a long worked sum
    assert constraint.is_complete('{"reasoning": "' + reasoning + '", "answer": 17}')
    assert dspy_lm.MAX_STRING_LENGTH >= 1000
    short = dspy_lm.schema_constraint(fmt, max_string_length=10)  # a caller may still cap it
    assert not short.is_prefix('{"reasoning": "' + "x" * 11)


def test_drop_incomplete_demos_removes_the_placeholder_a_model_would_copy():
    from llmlab.tasks import arithmetic

    program = arithmetic.cot_program()
    rows = arithmetic.make_problems("train", 3)
    program.predict.demos = (arithmetic.as_examples(rows[:2])  # labeled: no reasoning
                             + arithmetic.as_examples(rows[2:], with_reasoning=True))
    adapter = dspy.JSONAdapter()

    def prompt() -> str:
        return str(adapter.format(program.predict.signature, program.predict.demos, {"question": "1 + 1?"}))

    assert "Not supplied" in prompt()
    assert dspy_lm.drop_incomplete_demos(program) == 2
    assert "Not supplied" not in prompt() and len(program.predict.demos) == 1
    assert dspy_lm.drop_incomplete_demos(program) == 0
    with pytest.raises(TypeError, match="program"):
        dspy_lm.drop_incomplete_demos("not a program")
