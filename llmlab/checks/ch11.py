"""Checks for chapter 11 (retrieval and agents) exercises."""

from __future__ import annotations

import json
import math

import torch

from llmlab import agents
from llmlab.checks import Check
from llmlab.retrieval import bm25, hybrid, metrics

_DOCS = [["korvid", "ridge", "tent", "tent", "weighs", "1.8", "kg"], ["amsel", "drift", "backpack"],
         ["tent", "returns", "45", "days", "tent", "poles", "pitched", "outdoors", "exchange", "only", "refund"],
         ["korvid", "trail", "headlamp", "tent"]]


def _corpus_stats(docs: list[list[str]]) -> tuple[dict[str, int], int, float]:
    """Document frequencies, number of documents and average length."""
    freqs: dict[str, int] = {}
    for d in docs:
        for t in set(d):
            freqs[t] = freqs.get(t, 0) + 1
    return freqs, len(docs), sum(len(d) for d in docs) / len(docs)


def check_bm25_score(bm25_score) -> None:
    """Exercise 11.1: BM25 score of one tokenized document (Lucene idf, Robertson's tf part with (k1 + 1))."""
    freqs, n, avg = _corpus_stats(_DOCS)
    with Check("Exercise 11.1 bm25_score") as c:
        for query, doc, k1, b, why in [
                (["korvid"], 0, 1.5, 0.75, "one rare-ish term"),
                (["tent"], 0, 1.5, 0.75, "a term in 3 of 4 documents (idf must stay positive)"),
                (["tent"], 2, 1.5, 0.75, "the same term in a long document (length normalisation)"),
                (["tent"], 3, 1.2, 0.75, "the same term in a short document, k1=1.2"),
                (["korvid", "tent", "backpack"], 0, 1.5, 0.75, "three query terms, one absent"),
                (["korvid", "tent"], 2, 1.5, 0.0, "b=0 (no length normalisation)"),
                (["missing"], 1, 1.5, 0.75, "a term in no document (score 0)")]:
            case = f"query {query} on document {doc} ({why})"
            expected = bm25.bm25_score(query, _DOCS[doc], freqs, n, avg, k1, b)
            got = c.call(bm25_score, list(query), list(_DOCS[doc]), dict(freqs), n, avg, k1, b, case=case)
            if isinstance(got, (int, float)) and got < 0:
                c.fail(case, f"got a negative score {got:.4f}: use idf = log(1 + (N - n + 0.5) / (n + 0.5)), which "
                             "never goes below 0 even for a term in most documents")
            c.close(got, expected, case=case)


def check_cosine_top_k(cosine_top_k) -> None:
    """Exercise 11.2: cosine similarity top-k: (scores (k,), indices (k,)), best first."""
    # no two cosines tie for any query below (a tie's order would be arbitrary)
    matrix = torch.tensor([[10.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.2, 0.1], [0.6, 0.4, 0.3], [-1.0, 0.0, 0.0]])
    with Check("Exercise 11.2 cosine_top_k") as c:
        for query, k, why in [(torch.tensor([1.0, 1.0, 0.0]), 2, "rows of very different lengths"),
                              (torch.tensor([0.0, 2.0, 1.0]), 3, "a query that is not unit length"),
                              (torch.tensor([1.0, 0.0, 0.0]), 5, "k equal to the number of rows")]:
            case = f"query {query.tolist()}, k={k} ({why})"
            got = c.call(cosine_top_k, query.clone(), matrix.clone(), k, case=case)
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"expected a tuple (scores, indices), got {type(got).__name__}")
            scores, idx = got
            exp_scores, exp_idx = torch.nn.functional.cosine_similarity(matrix, query.unsqueeze(0)).topk(k)
            c.that(isinstance(idx, torch.Tensor), case, f"indices: expected a torch.Tensor, got {type(idx).__name__}")
            if idx.tolist() != exp_idx.tolist():
                dot = (matrix @ query).topk(k).indices.tolist()
                hint = " (that is the dot-product order: divide by both vectors' norms)" if idx.tolist() == dot else ""
                c.fail(case, f"indices: expected {exp_idx.tolist()}, got {idx.tolist()}{hint}")
            c.close(scores, exp_scores, case=case)


def check_reciprocal_rank_fusion(reciprocal_rank_fusion) -> None:
    """Exercise 11.3: RRF: sum of 1 / (k + rank), rank from 1; a list of (id, score), best first."""
    with Check("Exercise 11.3 reciprocal_rank_fusion") as c:
        for rankings, k in [([["a", "b", "c"], ["b", "a", "d"]], 60),
                            ([["x", "y"], ["z"], ["y", "z", "x"]], 60),
                            ([["p", "q", "r", "s"], ["s", "r"]], 1),
                            # ties against alphabetical order: b ties a (b seen first), c ties d (c seen first)
                            ([["b", "a", "c", "d"], ["a", "b", "d", "c"]], 60)]:
            case = f"rankings {rankings}, k={k}"
            got = c.call(reciprocal_rank_fusion, [list(r) for r in rankings], k, case=case)
            expected = hybrid.reciprocal_rank_fusion(rankings, k)
            c.that(isinstance(got, list) and all(isinstance(x, tuple) and len(x) == 2 for x in got), case,
                   f"expected a list of (id, score) tuples, got {got!r:.80}")
            c.equal([d for d, _ in got], [d for d, _ in expected], case=case + ": order of ids")
            for (d, s), (_, e) in zip(got, expected):
                if not math.isclose(s, e, rel_tol=1e-6):
                    hint = " (is your rank starting at 0? The first item has rank 1)" \
                        if math.isclose(s, sum(1 / (k + r.index(d)) for r in rankings if d in r)) else ""
                    c.fail(case, f"score of {d!r}: expected {e:.6f}, got {s:.6f}{hint}")
                    break


def check_recall_at_k(recall_at_k) -> None:
    """Exercise 11.4a: recall@k = |gold ∩ top-k| / |gold|."""
    with Check("Exercise 11.4a recall_at_k") as c:
        for ranked, gold, k in [(["x", "a", "b"], ["a", "b"], 2), (["x", "a", "b"], ["a"], 5),
                                (["a", "b", "c", "d"], ["d"], 3), (["a"], ["a"], 1), (["b", "a"], ["a", "c"], 10),
                                (["a", "b", "c", "d"], ["c", "a", "b"], 2)]:               # k < number of gold ids
            case = f"ranked {ranked}, gold {gold}, k={k}"
            c.close(c.call(recall_at_k, list(ranked), list(gold), k, case=case),
                    metrics.recall_at_k(ranked, gold, k), case=case)


def check_mean_reciprocal_rank(mean_reciprocal_rank) -> None:
    """Exercise 11.4b: MRR over all queries; 1 / rank of the first relevant id, 0 when none is retrieved."""
    with Check("Exercise 11.4b mean_reciprocal_rank") as c:
        for rankings, golds in [([["a", "b"]], [["b"]]), ([["a"], ["x", "y", "a"]], [["a"], ["a"]]),
                                ([["a", "b"], ["x", "y"]], [["b"], ["a"]]),
                                ([["x", "b", "a"], ["c"], ["q", "r", "s", "c"]], [["a", "b"], ["c"], ["c"]])]:
            case = f"rankings {rankings}, golds {golds}"
            c.close(c.call(mean_reciprocal_rank, [list(r) for r in rankings], [list(g) for g in golds], case=case),
                    metrics.mean_reciprocal_rank(rankings, golds), case=case)


def _tools() -> dict:
    calls: list[str] = []

    def lookup(arg: str) -> str:
        calls.append(arg)
        return f"order {arg}: quantity 2"

    return {"orders": lookup, "calculator": agents.calculator, "_calls": calls}


def check_agent_step(agent_step) -> None:
    """Exercise 11.6: parse the reply, run the tool, append [assistant reply, user 'Observation: ...']."""
    with Check("Exercise 11.6 agent_step") as c:
        history = [{"role": "system", "content": "tools"}, {"role": "user", "content": "task"}]
        for reply, why in [('{"tool": "orders", "input": "Q-1000"}', "an orders call"),
                           ('{"tool": "calculator", "input": "2 * 10.50"}', "a calculator call"),
                           ('{"tool": "calculator", "input": "1 / 0"}', "a tool that fails"),
                           ('{"tool": "final_answer", "input": "21"}', "the final answer"),
                           ("The answer is 21", "a reply that is not JSON"),
                           ('{"tool": "shell", "input": "rm -rf /"}', "an unknown tool")]:
            case = f"reply {reply!r} ({why})"
            tools = _tools()
            calls = tools.pop("_calls")
            before = json.dumps(history)
            got = c.call(agent_step, history, reply, tools, case=case)
            c.that(json.dumps(history) == before, case, "you changed the messages list passed in: build a new list")
            c.that(isinstance(got, tuple) and len(got) == 2, case,
                   f"expected a tuple (messages, final answer or None), got {type(got).__name__}")
            expected = agents.agent_step(history, reply, {k: v for k, v in _tools().items() if k != "_calls"})
            messages, final = got
            c.equal(final, expected[1], case=case + ": final answer")
            c.that(isinstance(messages, list) and len(messages) == len(expected[0]), case,
                   f"expected {len(expected[0])} messages after the step, got "
                   f"{len(messages) if isinstance(messages, list) else type(messages).__name__}")
            for i, (g, e) in enumerate(zip(messages, expected[0])):
                c.that(isinstance(g, dict) and g.get("role") == e["role"], case,
                       f"message {i}: expected role {e['role']!r}, got {g!r:.80}")
                if e["content"].startswith("Observation: error"):
                    c.that(str(g.get("content", "")).startswith("Observation: error"), case,
                           f"message {i}: expected an 'Observation: error ...' message, got {g.get('content')!r:.80}")
                else:
                    c.equal(g.get("content"), e["content"], case=case + f": message {i} content")
            if reply.startswith('{"tool": "orders"'):
                c.equal(calls, ["Q-1000"], case=case + ": argument passed to the tool")
