"""Chapter 10's serving workload: a shop assistant with a ~600-token system prompt and short customer questions."""

from __future__ import annotations

from importlib import resources

from llmlab import validate

QUESTIONS = [
    "Are you open on Sunday?",
    "How much is express delivery?",
    "Can I return a helmet I bought last week?",
    "Is my chain covered by the warranty?",
    "How long does a full service take to book?",
    "Do you deliver bikes assembled?",
    "My order is six days late. What now?",
    "When does the harbour store open on Monday?",
    "What does a basic service cost?",
    "Can I get a refund on cut cables?",
    "How fast do refunds arrive?",
    "Is delivery free for a 50 euro order?",
    "What do you need to find my order?",
    "Does the frame warranty cover rust?",
    "Can I pay for a repair in the store?",
    "Do you sell children's bikes?",
]


def system_prompt() -> str:
    """The shop assistant's system prompt (llmlab/data/ch10_system_prompt.txt)."""
    return resources.files("llmlab.data").joinpath("ch10_system_prompt.txt").read_text(encoding="utf-8")


def system_ids(tokenizer) -> list[int]:
    """Token ids of the chat-templated system turn alone: the prefix every request shares."""
    messages = [{"role": "system", "content": system_prompt()}]
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def request_ids(tokenizer, question: str, with_system: bool = True) -> list[int]:
    """Token ids of one chat request (system turn if asked, the question, the assistant header)."""
    validate.text("question", question)
    messages = ([{"role": "system", "content": system_prompt()}] if with_system else []) + [
        {"role": "user", "content": question}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])
