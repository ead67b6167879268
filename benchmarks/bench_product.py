"""Chapter 13's product measurements on the local model, more than the notebook can afford live.

The JSON format guard on chapter 05's order messages (success within 1 + r tries, r = 0..3: the first try greedy,
retries sampled); the router (chapter 06's test tickets plus out-of-scope messages, kNN vote over MiniLM
embeddings); the semantic cache's threshold curve and the latency a hit saves; a drift check between two system
prompts (latency, refusal rate, reply length); and the gateway over the real engines with injected failures and
hangs. Rates have 95% bootstrap intervals. Writes benchmarks/results/DATE-DEVICE-product.md and .json.

Run: flock /tmp/llmlab-heavy.lock python benchmarks/bench_product.py [--orders 32] [--drift 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import models, tokens  # noqa: E402
from llmlab.evaluation.stats import bootstrap_ci  # noqa: E402
from llmlab.product import cache, gateway, guards, observe, router  # noqa: E402
from llmlab.retrieval.dense import embed, load_encoder  # noqa: E402
from llmlab.serving.timing import summarise, timed  # noqa: E402
from llmlab.tasks import orders  # noqa: E402
from llmlab.tasks.jsonl import read_jsonl  # noqa: E402

ORDER_KEYS = ["item", "qty", "color", "city", "shipping"]
MAX_RETRIES = 3
PROMPTS = {"v1": "You are a support assistant. Answer in one short sentence.",
           "v2": "You are a support assistant. Answer in detail, step by step, with every option the customer has."}
PARAPHRASES = Path(router.__file__).resolve().parent.parent / "data" / "ch13_paraphrases.jsonl"
THRESHOLDS = [round(t, 2) for t in np.arange(0.3, 1.001, 0.05)]


def ci(values) -> list[float]:
    """[mean, low, high] of the values."""
    return list(bootstrap_ci([float(v) for v in values]))


def format_guard(model, tok, n: int) -> dict:
    """Tries each order message needs before its reply parses with every key (None: not within 1 + MAX_RETRIES)."""
    rows = orders.load_orders("test")[:n]
    messages = [orders.order_messages(r["text"]) for r in rows]
    table = []
    for attempt in range(MAX_RETRIES + 1):
        torch.manual_seed(attempt)
        settings = {} if attempt == 0 else {"do_sample": True, "temperature": 0.8}
        table.append(tokens.generate_batch(model, tok, messages, max_new_tokens=48, **settings))
    tries = [guards.json_guard(lambda a, i=i: table[a][i], ORDER_KEYS, MAX_RETRIES) for i in range(n)]
    needed = [g.tries if g.value is not None else None for g in tries]
    call = summarise([timed(models.chat, model, tok, m, 48)[1] for m in messages[:4]])
    return {"n": n, "tries_needed": needed,
            "success_by_retries": [ci([t is not None and t <= r + 1 for t in needed]) for r in range(MAX_RETRIES + 1)],
            "mean_calls": float(np.mean([g.tries for g in tries])), "call_seconds_median": call.median}


def routing(encoder) -> dict:
    """kNN routing accuracy (k = 5) on test tickets and out-of-scope messages, and the model calls saved."""
    train, test = router.routing_data("train"), router.routing_data("test")
    vectors = embed(encoder, [r["text"] for r in train])
    predicted = router.route(vectors, [r["label"] for r in train], embed(encoder, [r["text"] for r in test]), k=5)
    gold = [r["label"] for r in test]
    report = router.routing_report(predicted, gold)
    report["accuracy_ci"] = ci([p == g for p, g in zip(predicted, gold)])
    report.update(n=len(test), n_out_of_scope=sum(g == router.OUT_OF_SCOPE for g in gold))
    return report


def semantic_cache(model, tok, encoder) -> dict:
    """Threshold curve on paraphrases and near misses, and seconds of a model call against a cache lookup."""
    rows = read_jsonl(PARAPHRASES)
    cached = [r for r in rows if r["kind"] == "cached"]
    queries = [r for r in rows if r["kind"] != "cached"]
    best, sims = cache.best_matches(embed(encoder, [r["text"] for r in queries]),
                                    embed(encoder, [r["text"] for r in cached]))
    correct = [q["kind"] == "paraphrase" and cached[b]["group"] == q["group"] for q, b in zip(queries, best)]
    curve = cache.threshold_curve(sims.tolist(), correct, THRESHOLDS)
    sem = cache.SemanticCache(lambda texts: embed(encoder, texts), threshold=0.8)
    for r in cached:
        sem.put(r["text"], r["answer"], user="u")
    lookup = summarise([timed(sem.get, q["text"], "u")[1] for q in queries[:8]])
    model_call = summarise([timed(models.chat, model, tok, q["text"], 48)[1] for q in queries[:4]])
    return {"curve": curve, "lookup_seconds_median": lookup.median, "model_seconds_median": model_call.median}


def drift(model, tok, n: int) -> dict:
    """Per-request latency, refusals and length under two system prompts, and which metrics drifted."""
    questions = [r["text"] for r in read_jsonl(PARAPHRASES)][:n]
    out = {}
    for version, system in PROMPTS.items():
        seconds, replies = [], []
        for q in questions:
            reply, s = timed(models.chat, model, tok, [{"role": "system", "content": system},
                                                        {"role": "user", "content": q}], 96)
            seconds.append(s)
            replies.append(reply)
        out[version] = {"metrics": observe.request_metrics(seconds, replies), "seconds": seconds,
                        "per_request": observe.per_request(replies), "example": replies[0]}
    flags = {}
    for metric in ("mean_words", "refusal_rate"):
        a, b, drifted = observe.drift(out["v1"]["per_request"][metric], out["v2"]["per_request"][metric])
        flags[metric] = {"v1": list(a), "v2": list(b), "drifted": drifted}
    a, b, drifted = observe.drift(out["v1"]["seconds"], out["v2"]["seconds"])
    flags["latency_s"] = {"v1": list(a), "v2": list(b), "drifted": drifted}
    return {"n": n, "versions": out, "drift": flags}


def gateway_run(model, tok, n: int = 12) -> dict:
    """The gateway over the model (every 4th call raises, every 4th hangs past the timeout), the second tier when
    fetched, and the canned fallback: every request gets a complete reply."""
    base = gateway.available_engines(model, tok, max_new_tokens=24)
    count = [0]

    def faulty(prompt: str) -> str:
        count[0] += 1
        if count[0] % 4 == 2:
            raise RuntimeError("injected failure")
        if count[0] % 4 == 0:
            time.sleep(8)  # hangs past the timeout; the gateway abandons this thread
            return "too late"
        return base[0][1](prompt)

    for _, engine in base[1:]:
        engine("Hello")  # loads the second tier now, not inside a timed call

    g = gateway.Gateway([("faulty " + base[0][0], faulty), *base[1:]], timeout_s=5.0, retries=0)
    questions = [r["text"] for r in read_jsonl(PARAPHRASES)][:n]
    replies = [g(q, key="bench") for q in questions]
    return {"engines": [name for name, _ in g.engines], "statuses": [r.status for r in replies],
            "served_by": [r.engine for r in replies], "complete": all(r.text.strip() for r in replies),
            "log_example": g.lines[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=32)
    parser.add_argument("--drift", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    model, tok = models.load()
    encoder = load_encoder()
    data = {"guard": format_guard(model, tok, args.orders), "router": routing(encoder),
            "cache": semantic_cache(model, tok, encoder), "drift": drift(model, tok, args.drift),
            "gateway": gateway_run(model, tok)}
    data["seconds"] = time.perf_counter() - start
    g, r, c, d = data["guard"], data["router"], data["cache"], data["drift"]
    lines = [f"# Chapter 13: product measurements\n\n{common.machine_header()}\n",
             f"## Format guard ({g['n']} order messages, first try greedy, retries sampled at T=0.8)\n",
             "| retries allowed | valid JSON with all keys |", "|---|---|"]
    lines += [f"| {i} | {m:.1%} [{lo:.1%}, {hi:.1%}] |" for i, (m, lo, hi) in enumerate(g["success_by_retries"])]
    lines += [f"\nMean model calls per request: {g['mean_calls']:.2f}; one call: {g['call_seconds_median']:.2f} s "
              f"(median).\n", f"## Router ({r['n']} test messages, {r['n_out_of_scope']} out of scope)\n",
              f"Accuracy {r['accuracy_ci'][0]:.1%} [{r['accuracy_ci'][1]:.1%}, {r['accuracy_ci'][2]:.1%}]; "
              f"out-of-scope recall {r['oos_recall']:.1%}; in-scope refused {r['in_scope_refused']:.1%}; model calls "
              f"saved {r['cost_saved']:.1%}.\n", "## Semantic cache\n", "| threshold | hit rate | wrong-hit rate |",
              "|---|---|---|"]
    curve = c["curve"]
    lines += [f"| {t:.2f} | {h:.1%} | {w:.1%} |" for t, h, w in zip(curve["threshold"], curve["hit_rate"],
                                                                  curve["wrong_hit_rate"])]
    lines += [f"\nA lookup: {c['lookup_seconds_median'] * 1e3:.1f} ms; a model call: {c['model_seconds_median']:.2f} s."
              f"\n", f"## Drift between two system prompts ({d['n']} questions each)\n",
              "| metric | v1 | v2 | drifted |", "|---|---|---|---|"]
    for metric, f in d["drift"].items():
        lines.append(f"| {metric} | {f['v1'][0]:.2f} [{f['v1'][1]:.2f}, {f['v1'][2]:.2f}] | {f['v2'][0]:.2f} "
                     f"[{f['v2'][1]:.2f}, {f['v2'][2]:.2f}] | {f['drifted']} |")
    gw = data["gateway"]
    lines += ["\n## Gateway with injected failures\n", f"Engines: {gw['engines']}; statuses {gw['statuses']}; served "
              f"by {gw['served_by']}; every reply complete: {gw['complete']}.\n",
              f"Total run time {data['seconds']:.0f} s."]
    path = common.write_result("product", "\n".join(lines) + "\n", data=data)
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
