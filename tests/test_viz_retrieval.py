"""Chapter 11 retrieval explorer and position plot render; their pure functions return the right rows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from llmlab import retrieval  # noqa: E402
from llmlab.viz import retrieval as viz  # noqa: E402

CHUNKS = [retrieval.Chunk("a", 0, "korvid ridge tent"), retrieval.Chunk("b", 0, "amsel backpack"),
          retrieval.Chunk("c", 0, "korvid headlamp")]


def _retrievers():
    return {"BM25": retrieval.BM25Index([c.text for c in CHUNKS])}


def test_explorer_rows_and_html():
    rows = viz.explorer_rows("korvid tent", _retrievers(), CHUNKS, k=2, gold=["a"])
    assert [r["doc_id"] for r in rows["BM25"]] == ["a", "c"]
    assert rows["BM25"][0]["gold"] and not rows["BM25"][1]["gold"] and rows["BM25"][0]["rank"] == 1
    html = viz.explorer_html(rows)
    assert "<b style='color:green'>a</b>" in html and "BM25" in html
    with pytest.raises(ValueError, match="k"):
        viz.explorer_rows("x", _retrievers(), CHUNKS, k=0)


def test_explorer_widget_renders_and_updates():
    questions = [{"question": "korvid tent", "doc_ids": ["a"]}, {"question": "backpack", "doc_ids": ["b"]}]
    box = viz.retrieval_explorer(_retrievers(), CHUNKS, questions, k=2)
    pick, query, _, out = box.children
    assert "color:green" in out.value
    pick.value = 1
    assert query.value == "backpack" and "amsel" in out.value


def test_plot_accuracy_by_position():
    assert viz.plot_accuracy_by_position({0: 0.5, 1: 0.25, 2: 0.75}, 3).axes
    with pytest.raises(ValueError, match="accuracy"):
        viz.plot_accuracy_by_position({}, 3)
