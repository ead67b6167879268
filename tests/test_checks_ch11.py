"""Check-can-fail tests for chapter 11's exercise checks."""

import math
from collections import Counter

import torch
from checks_harness import CheckCase, make_tests

from llmlab import agents
from llmlab.checks import ch11
from llmlab.retrieval import bm25, hybrid, metrics
from llmlab.retrieval.dense import cosine_top_k


def _bm25(query, doc, doc_freqs, n_docs, avg_len, k1, b, idf, norm=True):
    tf = Counter(doc)
    length = k1 * (1 - b + b * len(doc) / avg_len) if norm else k1
    return sum(idf(doc_freqs.get(t, 0), n_docs) * tf[t] * (k1 + 1) / (tf[t] + length) for t in query if tf[t])


def bm25_classic_idf(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return _bm25(query, doc, doc_freqs, n_docs, avg_len, k1, b, lambda n, N: math.log((N - n + 0.5) / (n + 0.5)))


def bm25_plain_idf(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return _bm25(query, doc, doc_freqs, n_docs, avg_len, k1, b, lambda n, N: math.log(N / n))


def bm25_no_length_normalisation(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return _bm25(query, doc, doc_freqs, n_docs, avg_len, k1, b, bm25.idf, norm=False)


def bm25_raw_term_frequency(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    tf = Counter(doc)
    return sum(bm25.idf(doc_freqs.get(t, 0), n_docs) * tf[t] for t in query)


def bm25_counts_repeated_query_terms_once_per_doc_token(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return sum(bm25.bm25_score([t], doc, doc_freqs, n_docs, avg_len, k1, b) for t in doc if t in query)


def bm25_without_k1_plus_one(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return bm25.bm25_score(query, doc, doc_freqs, n_docs, avg_len, k1, b) / (k1 + 1)


def bm25_distinct_doc_length(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    tf = Counter(doc)                                               # |doc| as distinct terms, not tokens
    length = k1 * (1 - b + b * len(set(doc)) / avg_len)
    return sum(bm25.idf(doc_freqs.get(t, 0), n_docs) * tf[t] * (k1 + 1) / (tf[t] + length) for t in query if tf[t])


def bm25_log10_idf(query, doc, doc_freqs, n_docs, avg_len, k1, b):
    return _bm25(query, doc, doc_freqs, n_docs, avg_len, k1, b,
                 lambda n, N: math.log10(1 + (N - n + 0.5) / (n + 0.5)))


def top_k_dot_product(query, matrix, k):
    return (matrix @ query).topk(k)


def top_k_ascending(query, matrix, k):
    sims = torch.nn.functional.cosine_similarity(matrix, query.unsqueeze(0))
    return sims.topk(k, largest=False)


def top_k_only_matrix_normalised(query, matrix, k):
    return ((matrix / matrix.norm(dim=1, keepdim=True)) @ query).topk(k)


def top_k_only_query_normalised(query, matrix, k):
    return (matrix @ (query / query.norm())).topk(k)


def top_k_indices_as_list(query, matrix, k):
    scores, idx = cosine_top_k(query, matrix, k)
    return scores, idx.tolist()


def top_k_one_short(query, matrix, k):
    return cosine_top_k(query, matrix, max(k - 1, 1))


def rrf_rank_from_zero(rankings, k=60):
    scores = {}
    for r in rankings:
        for rank, d in enumerate(r):
            scores[d] = scores.get(d, 0.0) + 1 / (k + rank)
    return sorted(scores.items(), key=lambda x: -x[1])


def rrf_mean_instead_of_sum(rankings, k=60):
    scores, counts = {}, {}
    for r in rankings:
        for rank, d in enumerate(r, start=1):
            scores[d] = scores.get(d, 0.0) + 1 / (k + rank)
            counts[d] = counts.get(d, 0) + 1
    return sorted(((d, s / counts[d]) for d, s in scores.items()), key=lambda x: -x[1])


def rrf_worst_first(rankings, k=60):
    return hybrid.reciprocal_rank_fusion(rankings, k)[::-1]


def rrf_ignores_k(rankings, k=60):
    return hybrid.reciprocal_rank_fusion(rankings, 60)


def rrf_ties_alphabetical(rankings, k=60):
    return sorted(hybrid.reciprocal_rank_fusion(rankings, k), key=lambda x: (-x[1], x[0]))


def rrf_ties_reverse(rankings, k=60):
    return sorted(hybrid.reciprocal_rank_fusion(rankings, k), key=lambda x: (x[1], x[0]), reverse=True)


def rrf_ties_last_seen(rankings, k=60):
    scores = {}
    for r in rankings:
        for rank, d in enumerate(r, start=1):
            scores[d] = scores.pop(d, 0.0) + 1 / (k + rank)         # re-inserting moves d to the end
    return sorted(scores.items(), key=lambda x: -x[1])


def recall_divides_by_k(ranked, gold, k):
    return len(set(ranked[:k]) & set(gold)) / k


def recall_ignores_k(ranked, gold, k):
    return len(set(ranked) & set(gold)) / len(gold)


def recall_any_hit(ranked, gold, k):
    return float(bool(set(ranked[:k]) & set(gold)))


def recall_divides_by_min_k_gold(ranked, gold, k):
    return len(set(ranked[:k]) & set(gold)) / min(k, len(gold))


def mrr_over_hits_only(rankings, golds):
    rr = [metrics.reciprocal_rank(r, g) for r, g in zip(rankings, golds)]
    hits = [x for x in rr if x > 0]
    return sum(hits) / len(hits)


def mrr_rank_from_zero(rankings, golds):
    total = 0.0
    for r, g in zip(rankings, golds):
        for rank, d in enumerate(r):
            if d in g:
                total += 1 / (rank + 1e-9) if rank else 1.0
                break
    return total / len(rankings)


def mrr_last_relevant(rankings, golds):
    total = 0.0
    for r, g in zip(rankings, golds):
        ranks = [i for i, d in enumerate(r, start=1) if d in g]
        total += 1 / ranks[-1] if ranks else 0.0
    return total / len(rankings)


def mrr_mean_over_gold_items(rankings, golds):
    total = 0.0
    for r, g in zip(rankings, golds):
        total += sum(1 / (r.index(d) + 1) for d in g if d in r) / len(g)
    return total / len(rankings)


def step_mutates_input(messages, reply, tools):
    out, final = agents.agent_step(messages, reply, tools)
    messages[:] = out
    return messages, final


def step_observation_as_assistant(messages, reply, tools):
    out, final = agents.agent_step(messages, reply, tools)
    if final is None:
        out[-1] = {"role": "assistant", "content": out[-1]["content"]}
    return out, final


def step_crashes_on_bad_json(messages, reply, tools):
    import json
    call = json.loads(reply)
    if call["tool"] == "final_answer":
        return list(messages) + [{"role": "assistant", "content": reply}], call["input"]
    obs = agents.run_tool(tools, call["tool"], call["input"])
    return list(messages) + [{"role": "assistant", "content": reply},
                             {"role": "user", "content": f"Observation: {obs}"}], None


def step_never_finishes(messages, reply, tools):
    out, final = agents.agent_step(messages, reply, tools)
    if final is not None:
        out = out + [{"role": "user", "content": "Observation: done"}]
    return out, None


def step_passes_whole_call(messages, reply, tools):
    import json
    try:
        call = json.loads(reply)
    except ValueError:
        return agents.agent_step(messages, reply, tools)
    if call.get("tool") == "orders":
        obs = tools["orders"](reply)
        return list(messages) + [{"role": "assistant", "content": reply},
                                 {"role": "user", "content": f"Observation: {obs}"}], None
    return agents.agent_step(messages, reply, tools)


def step_forgets_reply(messages, reply, tools):
    out, final = agents.agent_step(messages, reply, tools)
    return [m for m in out if m["role"] != "assistant"], final


CASES = [
    CheckCase(ch11.check_bm25_score, bm25.bm25_score,
              [bm25_classic_idf, bm25_plain_idf, bm25_no_length_normalisation, bm25_raw_term_frequency,
               bm25_counts_repeated_query_terms_once_per_doc_token, bm25_without_k1_plus_one,
               bm25_distinct_doc_length, bm25_log10_idf]),
    CheckCase(ch11.check_cosine_top_k, cosine_top_k,
              [top_k_dot_product, top_k_ascending, top_k_only_matrix_normalised, top_k_one_short,
               top_k_only_query_normalised, top_k_indices_as_list]),
    CheckCase(ch11.check_reciprocal_rank_fusion, hybrid.reciprocal_rank_fusion,
              [rrf_rank_from_zero, rrf_mean_instead_of_sum, rrf_worst_first, rrf_ignores_k, rrf_ties_alphabetical,
               rrf_ties_reverse, rrf_ties_last_seen]),
    CheckCase(ch11.check_recall_at_k, metrics.recall_at_k, [recall_divides_by_k, recall_ignores_k, recall_any_hit,
                                                                   recall_divides_by_min_k_gold]),
    CheckCase(ch11.check_mean_reciprocal_rank, metrics.mean_reciprocal_rank,
              [mrr_over_hits_only, mrr_rank_from_zero, mrr_last_relevant, mrr_mean_over_gold_items]),
    CheckCase(ch11.check_agent_step, agents.agent_step,
              [step_mutates_input, step_observation_as_assistant, step_crashes_on_bad_json, step_never_finishes,
               step_passes_whole_call, step_forgets_reply]),
]

test_check_passes_on_solution, test_check_fails_on_stub, test_check_fails_on_wrong_answer = make_tests(CASES)
