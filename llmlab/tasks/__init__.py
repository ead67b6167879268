"""The chapters' small tasks and their data loaders, one module per task (data files live in llmlab/data/).

The generation tasks share one interface (`base.Task`: load a split, the messages for an example, score a reply):
`get(name)` returns one of NAMES, and `base.evaluate` scores any model on any of them.
"""

from __future__ import annotations

from llmlab.tasks.base import Task, evaluate

NAMES = ("orders", "tickets", "arithmetic", "company_docs")
ARITHMETIC_SIZES = {"train": 40, "dev": 20, "test": 40, "unseen": 40}  # the generator's first n of each split


def _orders() -> Task:
    """Chapter 05: an order description -> its JSON object (exact match of the first object in the reply)."""
    from llmlab.tasks import orders

    return Task("orders", orders.ORDER_SPLITS, orders.load_orders, lambda e: orders.order_messages(e["text"]),
                lambda e, r: orders.reply_correct(r, e["target"]))


def _tickets() -> Task:
    """Chapter 06: a customer message -> its team (the reply must name exactly the gold team)."""
    from llmlab.tasks import tickets

    def messages(e: dict) -> list[dict]:
        return [{"role": "system", "content": tickets.INSTRUCTION + " Reply with the team name only."},
                {"role": "user", "content": e["text"]}]

    return Task("tickets", tickets.SPLITS + (tickets.UNSEEN,), tickets.load_tickets, messages,
                lambda e, r: tickets.reply_team(r) == e["label"])


def _arithmetic() -> Task:
    """Chapter 06: a two- or three-step word problem -> its whole-number answer (the reply's last number)."""
    from llmlab.evaluation.text import final_number
    from llmlab.tasks import arithmetic

    return Task("arithmetic", arithmetic.SPLITS, lambda s: arithmetic.make_problems(s, ARITHMETIC_SIZES[s]),
                lambda e: [{"role": "user", "content": f"{arithmetic.INSTRUCTION}\n\n{e['question']}"}],
                lambda e, r: final_number(r) == e["answer"])


def _company_docs() -> Task:
    """Chapter 11: a question about the company documents -> an accepted answer, as whole words in the reply."""
    from llmlab.evaluation.text import contains_match
    from llmlab.tasks import company_docs

    return Task("company_docs", company_docs.SPLITS, company_docs.load_questions,
                lambda e: [{"role": "user", "content": e["question"]}], lambda e, r: contains_match(r, e["answers"]))


def get(name: str) -> Task:
    """The task called name, one of NAMES."""
    from llmlab import validate

    validate.one_of("name", name, NAMES)
    return {"orders": _orders, "tickets": _tickets, "arithmetic": _arithmetic, "company_docs": _company_docs}[name]()


__all__ = ["ARITHMETIC_SIZES", "NAMES", "Task", "evaluate", "get"]
