"""Chapter 11 views: the retrieval explorer (query -> ranked chunks per retriever) and the lost-in-the-middle plot."""

from __future__ import annotations

import html
from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from llmlab import validate
from llmlab.retrieval import Chunk


def explorer_rows(query: str, retrievers: Mapping[str, object], chunks: Sequence[Chunk], k: int = 5,
                  gold: Sequence[str] = ()) -> dict[str, list[dict]]:
    """For each retriever: its top-k chunks as {rank, score, doc_id, text, gold} dicts."""
    validate.text("query", query)
    validate.positive_int("k", k)
    out = {}
    for name, retriever in retrievers.items():
        out[name] = [{"rank": r, "score": float(s), "doc_id": chunks[i].doc_id, "text": chunks[i].text,
                      "gold": chunks[i].doc_id in gold} for r, (i, s) in enumerate(retriever.search(query, k), start=1)]
    return out


def explorer_html(rows: Mapping[str, list[dict]], width: int = 90) -> str:
    """An HTML table per retriever (gold documents in bold green)."""
    parts = []
    for name, items in rows.items():
        cells = []
        for r in items:
            doc = html.escape(r["doc_id"])
            doc = f"<b style='color:green'>{doc}</b>" if r["gold"] else doc
            cells.append(f"<tr><td>{r['rank']}</td><td>{r['score']:.3f}</td><td>{doc}</td>"
                         f"<td>{html.escape(r['text'][:width])}</td></tr>")
        body = "".join(cells)
        parts.append(f"<h4>{html.escape(name)}</h4><table><tr><th>rank</th><th>score</th><th>doc</th><th>chunk</th>"
                     f"</tr>{body}</table>")
    return "".join(parts)


def retrieval_explorer(retrievers: Mapping[str, object], chunks: Sequence[Chunk], questions: Sequence[dict],
                       k: int = 5):
    """An ipywidgets explorer: pick a question (or type a query), see each retriever's ranked chunks and scores."""
    import ipywidgets as widgets

    pick = widgets.Dropdown(options=[(q["question"], i) for i, q in enumerate(questions)], description="question",
                            layout=widgets.Layout(width="95%"))
    query = widgets.Text(value=questions[0]["question"], description="query", layout=widgets.Layout(width="95%"))
    top = widgets.IntSlider(value=k, min=1, max=10, description="k")
    out = widgets.HTML()

    def show(*_):
        gold = questions[pick.value]["doc_ids"] if query.value == questions[pick.value]["question"] else ()
        out.value = explorer_html(explorer_rows(query.value or "?", retrievers, chunks, top.value, gold))

    def picked(change):
        query.value = questions[change["new"]]["question"]

    pick.observe(picked, names="value")
    query.observe(show, names="value")
    top.observe(show, names="value")
    show()
    return widgets.VBox([pick, query, top, out])


def plot_accuracy_by_position(accuracy: Mapping[int, float], n_passages: int, title: str = ""):
    """Accuracy against the gold passage's position (1 = first); returns the Figure."""
    if not accuracy:
        raise ValueError("accuracy must be a non-empty {position: accuracy} dict, got {}")
    positions = sorted(accuracy)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([p + 1 for p in positions], [accuracy[p] for p in positions], "o-")
    ax.set_xticks(range(1, n_passages + 1))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"position of the gold passage (of {n_passages})")
    ax.set_ylabel("answer contains gold")
    ax.set_title(title or "Lost in the middle?")
    fig.tight_layout()
    return fig
