"""Tests for llmlab.agents: safe calculator, tools with time limits, tool-call parsing, one step, the loop."""

import threading

import pytest
import torch

from llmlab import agents, structured
from llmlab.kit import fixtures
from llmlab.tasks import company_docs

ORDERS = {"Q-1000": {"customer": "A", "product": "Amsel Ridge", "quantity": 2, "unit_price": 10.5,
                     "status": "shipped"}}


def tools():
    return {"orders": agents.make_orders_tool(ORDERS), "calculator": agents.calculator}


@pytest.mark.parametrize("expr,value", [("3 * 24.50", "73.50"), ("2*10.5", "21"), ("(1 + 2) / 4", "0.75"),
                                        ("-3 + 5", "2"), ("7 x 3", "21")])
def test_calculator(expr, value):
    assert agents.calculator(expr) == value


@pytest.mark.parametrize("expr", ["__import__('os')", "2 ** 99999", "open('x')", "a + 1", "1" * 81, "1 / 0", ""])
def test_calculator_refuses_code(expr):
    with pytest.raises(ValueError):
        agents.calculator(expr)


def test_orders_tool_normalises_ids():
    tool = agents.make_orders_tool(ORDERS)
    assert "quantity 2" in tool("q-1000") and "unit_price 10.50" in tool("order Q1000")
    assert tool("Q-9999").startswith("no order")


def test_search_tool_and_planted_document():
    docs = company_docs.load_documents()
    search = agents.make_search_tool(docs)
    assert "TB-" in search("warranty product code Nessak Drift") and "Nessak Drift" in search("Nessak Drift")
    planted = agents.make_search_tool(docs, planted=company_docs.INJECTION)
    assert company_docs.INJECTION_PAYLOAD in planted("Nessak Drift")


def test_run_tool_times_out_without_waiting_for_the_tool():
    release, finished = threading.Event(), threading.Event()

    def stuck(_):
        release.wait(timeout=60)
        finished.set()
        return "late"

    try:
        reply = agents.run_tool({"stuck": stuck}, "stuck", "", timeout_s=0.05)
        assert reply == "error: tool 'stuck' took longer than 0.05 s"
        assert not finished.is_set()  # run_tool came back while the tool was still blocked
    finally:
        release.set()


def test_run_tool_returns_result_within_time_and_catches_errors():
    assert agents.run_tool({"echo": lambda a: a.upper()}, "echo", "hi", timeout_s=30) == "HI"
    assert agents.run_tool(tools(), "calculator", "1/0") == "error: division by zero"
    assert agents.run_tool(tools(), "shell", "ls").startswith("error: unknown tool")


def test_parse_tool_call():
    names = ["orders", "final_answer"]
    assert agents.parse_tool_call('x {"tool": "orders", "input": "Q-1"} y', names) == agents.ToolCall("orders", "Q-1")
    assert agents.parse_tool_call('{"tool": "final_answer", "input": 21}', names).input == "21"
    for bad in ['{"tool": "shell", "input": "ls"}', "orders(Q-1)", '{"tool": "orders"}', '{"tool": "orders",']:
        with pytest.raises(ValueError):
            agents.parse_tool_call(bad, names)


def test_schema_regex_accepts_only_valid_calls():
    schema = agents.tool_schema(["orders", "final_answer"])
    constraint = structured.json_schema_constraint(schema)
    assert constraint.is_complete('{"tool": "orders", "input": "Q-1000"}')
    assert not constraint.is_complete('{"tool": "shell", "input": "ls"}')


def test_agent_step_dispatches_and_appends_observation():
    messages = [{"role": "user", "content": "task"}]
    out, final = agents.agent_step(messages, '{"tool": "calculator", "input": "2 * 10.50"}', tools())
    assert final is None and len(messages) == 1
    assert out[1] == {"role": "assistant", "content": '{"tool": "calculator", "input": "2 * 10.50"}'}
    assert out[2] == {"role": "user", "content": "Observation: 21"}
    out, final = agents.agent_step(messages, '{"tool": "final_answer", "input": "21"}', tools())
    assert final == "21" and len(out) == 2
    out, final = agents.agent_step(messages, "I think 21", tools())
    assert final is None and out[-1]["content"].startswith("Observation: error: invalid tool call")


def test_run_agent_on_tiny_model_is_always_valid_when_constrained():
    model, tok = fixtures.tiny_model(), fixtures.tiny_tokenizer()
    trace = agents.run_agent(model, tok, "What is 1 + 1?", tools(), max_steps=1, max_new_tokens=12)
    assert len(trace.steps) == 1
    schema = agents.tool_schema(["orders", "calculator", "final_answer"])
    assert structured.json_schema_constraint(schema).is_prefix(trace.steps[0].reply)
    free = agents.run_agent(model, tok, "What is 1 + 1?", tools(), max_steps=1, constrained=False, max_new_tokens=4)
    assert free.steps[0].valid is False and free.answer is None and free.stop == "step budget"


def test_answer_correct_and_failure_modes():
    assert agents.answer_correct("The total is 156.5 euros", "156.50")
    assert not agents.answer_correct("1565", "156.50")
    assert agents.answer_correct("It is Shipped", "shipped")
    # whole normalised words (evaluation.text.contains_match), no longer a raw substring (issue 24)
    assert agents.answer_correct("The code is TB-2226.", "TB-2226") and not agents.answer_correct("TB-22260", "TB-2226")
    assert not agents.answer_correct("it was unshipped", "shipped")
    trace = agents.Trace("t", [agents.Step("{}", True, "calculator", "1", "1", 0.0)], None)
    assert agents.failure_mode(trace, "2", ["orders"]) == "wrong first tool"
    assert agents.failure_mode(trace, "2", ["calculator"]) == "step budget exhausted"
    trace.answer = "2"
    assert agents.failure_mode(trace, "2", ["orders"]) == "success"
    trace.steps.append(agents.Step("oops", False, None, None, "error", 0.0))
    trace.answer = "3"
    assert agents.failure_mode(trace, "2", ["calculator"]) == "invalid tool call"


def test_allowed_tools_protocol():
    names = ["orders", "calculator", agents.FINAL]
    assert agents.allowed_tools(names, [], 0, 4) == ["orders", "calculator"]  # look something up first
    assert agents.allowed_tools(names, [("orders", "Q-1")], 1, 4) == names
    assert agents.allowed_tools(names, [("orders", "Q-1"), ("orders", "Q-1")], 2, 4) == [agents.FINAL]  # repeat
    assert agents.allowed_tools(names, [("orders", "Q-1"), ("calculator", "2*3")], 3, 4) == [agents.FINAL]  # budget
    assert agents.allowed_tools([agents.FINAL], [], 0, 4) == [agents.FINAL]


def test_protocol_keeps_final_answer_out_of_the_first_constrained_reply():
    model, tok = fixtures.tiny_model(), fixtures.tiny_tokenizer()
    trace = agents.run_agent(model, tok, "What is 1 + 1?", tools(), max_steps=1, max_new_tokens=12)
    assert trace.answer is None and "final" not in trace.steps[0].reply
    schema = agents.tool_schema(["orders", "calculator"])
    assert structured.json_schema_constraint(schema).is_prefix(trace.steps[0].reply)


def test_free_text_reply_is_chapter_02_greedy_loop_and_matches_generate():
    model, tok = fixtures.perturbed(fixtures.tiny_model()), fixtures.tiny_tokenizer()
    messages = [{"role": "user", "content": "What is 1 + 1?"}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=9, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    want = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert want and agents._reply(model, tok, messages, False, ["final_answer"], 9) == want
