"""Chapter 06's ticket-routing data: split sizes, balanced labels, and an 'unseen' split with its own templates."""

from __future__ import annotations

import re

import pytest

from llmlab.tasks import tickets


def _template_of(text: str, templates: dict[str, list[str]]) -> tuple[str, int] | None:
    """(team, index) of the template a message was filled from, None when no template matches."""
    for team, bodies in templates.items():
        for i, body in enumerate(bodies):
            pattern = re.escape(body[0].lower() + body[1:])
            pattern = re.sub(r"\\\{\w+\\\}", ".+", pattern)
            if re.search(pattern, text[0].lower() + text[1:], re.IGNORECASE):
                return team, i
    return None


def test_splits_sizes_and_labels():
    sizes = {s: len(tickets.load_tickets(s)) for s in tickets.SPLITS + (tickets.UNSEEN,)}
    assert sizes == {"train": 100, "dev": 100, "test": 200, "unseen": 100}
    unseen = tickets.load_tickets(tickets.UNSEEN)
    assert sorted({r["label"] for r in unseen}) == sorted(tickets.LABELS)
    assert all(sum(r["label"] == label for r in unseen) == 25 for label in tickets.LABELS)
    with pytest.raises(ValueError, match="split"):
        tickets.load_tickets("validation")


def test_unseen_split_shares_no_template_or_text_with_the_others():
    from data_scripts import load_script

    make = load_script("ch06_make_tickets")
    seen = [r["text"] for s in tickets.SPLITS for r in tickets.load_tickets(s)]
    unseen = [r["text"] for r in tickets.load_tickets(tickets.UNSEEN)]
    assert not set(seen) & set(unseen)
    assert all(_template_of(t, make.UNSEEN_TEMPLATES) is not None for t in unseen)
    assert all(_template_of(t, make.UNSEEN_TEMPLATES) is None for t in seen)
    assert all(_template_of(t, make.TEMPLATES) is not None for t in seen)
