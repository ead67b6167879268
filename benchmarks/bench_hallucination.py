"""Hallucination on the local model: four detectors scored by AUROC, fabrication on invented entities, snowballing.

Run with `flock /tmp/llmlab-heavy.lock python benchmarks/bench_hallucination.py` (--quick for a smoke run). Writes
benchmarks/results/DATE-DEVICE-hallucination.md and .json; --tier2 measures the same on the opt-in tier
(Qwen2.5-Coder-0.5B-Instruct, bf16) instead, recorded as "hallucination-qwen05":

- detectors: two pools of answers, closed-book (chapter 12's facts + 40 invented entities) and RAG (chapter 11's
  shop questions + the same invented entities, BM25 top passages). Label: the answer is right (an invented entity's
  only right answer is to abstain). Scores: mean token log-prob, minus the entropy, minus the SelfCheck
  inconsistency over N samples (exact and MiniLM), the model's entailment judgement, context overlap. AUROC with a
  95% bootstrap interval, and each detector's cost in model calls per answer.
- fabrication: share of invented-entity questions answered instead of declined, closed-book and with retrieval,
  with and without an "I don't know" instruction, and how often the instruction makes it decline answerable ones.
- snowballing: the assistant reply is forced to begin with a wrong (or the right) capital city; count the later
  sentences that repeat the wrong city and how often the model corrects itself.
All rates with 95% bootstrap intervals, stored as [mean, low, high]. Greedy decoding and seeded sampling: the
numbers are deterministic for a given model and torch build.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from llmlab import models, tokens  # noqa: E402
from llmlab import retrieval as R  # noqa: E402
from llmlab.evaluation import hallucination as H  # noqa: E402
from llmlab.evaluation.roc import auroc_ci  # noqa: E402
from llmlab.evaluation.stats import bootstrap_ci  # noqa: E402
from llmlab.tasks import company_docs  # noqa: E402

NAME, NAME_TIER2 = "hallucination", "hallucination-qwen05"
TOP = 2  # passages given to the model
SNOWBALL_USER = "Tell me about the capital of {country} in three sentences."


def ci(values) -> list[float]:
    """[mean, low, high] of per-item values (the JSON form of an Interval)."""
    return [float(x) for x in bootstrap_ci([float(v) for v in values])]


def templated(tok, messages_list) -> list[str]:
    """Chat-templated prompt texts ready for generation (so the same text can be scored later)."""
    return [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages_list]


def answers(model, tok, prompts, max_new_tokens: int) -> list[str]:
    """Greedy first-line answers to templated prompts, in batches."""
    return [H.first_line(r) for r in tokens.generate_batch(model, tok, prompts, max_new_tokens, chat=False)]


def retriever():
    """BM25 over chapter 11's documents in sentence chunks (as chapter 11's bench) and a passages(question) helper."""
    chunks = R.chunk_documents(company_docs.load_documents(), method="sentence", size=40, overlap=0)
    index = R.BM25Index([c.text for c in chunks])
    return lambda q: [chunks[i].text for i, _ in index.search(q, TOP)] or [chunks[0].text]


def fabrication(model, tok, closed, rag, passages, max_new_tokens: int, given: dict | None = None) -> dict:
    """Per condition (closed-book over facts + invented, RAG over shop questions + invented; each with and without
    the "I don't know" rule): fabrication on invented entities, abstention and accuracy on answerable ones.
    `given` holds answers already generated for a condition (the detectors' greedy answers), so they are reused."""
    out, given = {}, given or {}
    for cond in ("closed-book", "closed-book + I don't know", "RAG", "RAG + I don't know"):
        idk, use_rag = cond.endswith("know"), cond.startswith("RAG")
        pool = rag if use_rag else closed
        got = given.get(cond)
        if got is None:
            msgs = [H.rag_messages(q["question"], passages[q["id"]], idk) if use_rag
                    else H.closed_book_messages(q["question"], idk) for q in pool]
            got = answers(model, tok, templated(tok, msgs), max_new_tokens)
        invented = [a for a, q in zip(got, pool) if q["kind"] == "invented"]
        gold = [(a, q) for a, q in zip(got, pool) if q["kind"] != "invented"]
        out[cond] = {"answers": got,
                     "fabrication": ci([not H.is_abstention(a) for a in invented]),
                     "abstain_on_answerable": ci([H.is_abstention(a) for a, _ in gold]),
                     "accuracy_on_answerable": ci([H.is_correct(a, q) for a, q in gold])}
        print(f"{cond}: fabrication {out[cond]['fabrication'][0]:.2f}", flush=True)
    return out


def detectors(model, tok, encoder, pool, passages, n_samples: int, max_new_tokens: int, rag: bool) -> dict:
    """Answers of one pool, their labels and every detector's score; AUROC with intervals."""
    msgs = [H.rag_messages(q["question"], passages[q["id"]]) if rag else H.closed_book_messages(q["question"])
            for q in pool]
    prompts = templated(tok, msgs)
    got = answers(model, tok, prompts, max_new_tokens)
    labels = [H.is_correct(a, q) for a, q in zip(got, pool)]
    conf = H.answer_confidence(model, tok, prompts, got)
    scores = {"mean log-prob": [lp for lp, _ in conf], "entropy": [-e for _, e in conf]}
    if rag:
        ctx = [" ".join(passages[q["id"]]) for q in pool]
        scores["entailment judge"] = [H.entailment_score(model, tok, c, q["question"], a)
                                      for c, q, a in zip(ctx, pool, got)]
        scores["context overlap"] = [H.context_overlap(a, c) for a, c in zip(got, ctx)]
    else:
        torch.manual_seed(0)
        flat = tokens.generate_batch(model, tok, prompts, max_new_tokens, chat=False, do_sample=True,
                                     temperature=1.0, num_return_sequences=n_samples)
        samples = [[H.first_line(r) for r in flat[i * n_samples:(i + 1) * n_samples]] for i in range(len(pool))]
        scores["SelfCheck exact"] = [-H.selfcheck_exact(a, s) for a, s in zip(got, samples)]
        vecs = R.embed(encoder, [a or "(empty)" for a in got])
        svecs = R.embed(encoder, [s or "(empty)" for row in samples for s in row]).reshape(len(pool), n_samples, -1)
        scores["SelfCheck MiniLM"] = [-H.selfcheck_cosine(v, s) for v, s in zip(vecs, svecs)]
    both = 0 < sum(labels) < len(labels)
    return {"ids": [q["id"] for q in pool], "kinds": [q["kind"] for q in pool], "answers": got, "labels": labels,
            "accuracy": ci(labels), "scores": scores,
            "auroc": {k: [float(x) for x in auroc_ci(v, labels)] if both else None for k, v in scores.items()}}


def snowball(model, tok, n_items: int, max_new_tokens: int) -> dict:
    """Continuations after a forced wrong (or right) first sentence about a capital city."""
    items = H.snowball_items(n_items)
    out = {}
    for cond in ("wrong", "right"):
        prompts = [H.forced_prompt(tok, SNOWBALL_USER.format(country=it["country"]),
                                   f"The capital of {it['country']} is {it[cond]}.") for it in items]
        # min_new_tokens: SmolLM2 otherwise ends its turn right after the forced sentence (the first run's
        # continuations were all empty)
        conts = tokens.generate_batch(model, tok, prompts, max_new_tokens, chat=False,
                                      min_new_tokens=max_new_tokens // 2)
        rows = [H.snowball_errors(c, it["wrong"], it["right"]) for c, it in zip(conts, items)]
        out[cond] = {"continuations": conts, "errors": [r["errors"] for r in rows],
                     "mean_errors": ci([r["errors"] for r in rows]),
                     "repeats_wrong": ci([r["errors"] > 0 for r in rows]),
                     "corrected": ci([r["corrected"] for r in rows]), "sentences": ci([r["sentences"] for r in rows])}
    out["items"] = items
    return out


def measure(model, tok, quick: bool, n_samples: int, max_new_tokens: int) -> dict:
    """Everything for one model."""
    qs = H.load_questions()
    if quick:
        qs = [q for k in H.KINDS for q in [q for q in qs if q["kind"] == k][:6]]
    passages_of = retriever()
    passages = {q["id"]: passages_of(q["question"]) for q in qs}
    encoder = R.load_encoder()
    closed = [q for q in qs if q["kind"] in ("fact", "invented")]
    rag = [q for q in qs if q["kind"] in ("corpus", "invented")]
    t0 = time.perf_counter()
    data = {"n_questions": {k: sum(q["kind"] == k for q in qs) for k in H.KINDS}, "n_samples": n_samples,
            "top_passages": TOP, "detector_calls": H.DETECTOR_CALLS,
            "closed_book": detectors(model, tok, encoder, closed, passages, n_samples, max_new_tokens, rag=False)}
    print("closed-book pool done", flush=True)
    data["rag"] = detectors(model, tok, encoder, rag, passages, n_samples, max_new_tokens, rag=True)
    print("RAG pool done", flush=True)
    data["fabrication"] = fabrication(model, tok, closed, rag, passages, max_new_tokens,
                                      {"closed-book": data["closed_book"]["answers"], "RAG": data["rag"]["answers"]})
    data["snowball"] = snowball(model, tok, 6 if quick else 16, 32)
    data["seconds"] = time.perf_counter() - t0
    return data


def fmt(iv, pct: bool = True) -> str:
    """'m [lo, hi]' of a stored interval."""
    return "n/a (one class only)" if iv is None else (f"{iv[0]:.0%} [{iv[1]:.0%}, {iv[2]:.0%}]" if pct
                                                       else f"{iv[0]:.2f} [{iv[1]:.2f}, {iv[2]:.2f}]")


def report(data: dict, model_name: str, header: str | None = None) -> str:
    """The markdown report."""
    lines = [f"# Hallucination: detectors and fabrication ({model_name})", "", header or common.machine_header(), "",
             f"Questions: {data['n_questions']}; SelfCheck samples N = {data['n_samples']}; RAG passages: BM25 top "
             f"{data['top_passages']}. Run time {data['seconds']:.0f} s.", ""]
    if "closed_book" in data:
        lines += ["## Detectors (AUROC at telling right answers from wrong or invented ones, 95% bootstrap)", "",
                  "| pool | accuracy | detector | model calls per answer | AUROC |", "|---|---|---|---|---|"]
        for pool in ("closed_book", "rag"):
            p = data[pool]
            for k, iv in p["auroc"].items():
                lines.append(f"| {pool} | {fmt(p['accuracy'])} | {k} | {data['detector_calls'][k]} | "
                             f"{fmt(iv, False)} |")
    lines += ["", "## Fabrication on invented entities", "",
              "| condition | fabricated (invented) | declined (answerable) | right (answerable) |", "|---|---|---|---|"]
    for cond, r in data["fabrication"].items():
        lines.append(f"| {cond} | {fmt(r['fabrication'])} | {fmt(r['abstain_on_answerable'])} | "
                     f"{fmt(r['accuracy_on_answerable'])} |")
    if "snowball" in data:
        s = data["snowball"]
        lines += ["", "## Snowballing (forced first sentence about a capital city)", "",
                  "| forced | later sentences naming the wrong city | any repeat | corrects itself |",
                  "|---|---|---|---|"]
        for cond in ("wrong", "right"):
            lines.append(f"| {cond} | {fmt(s[cond]['mean_errors'], False)} | {fmt(s[cond]['repeats_wrong'])} | "
                         f"{fmt(s[cond]['corrected'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Parse arguments, measure, write."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 questions per kind, nothing written")
    parser.add_argument("--samples", type=int, default=4, help="SelfCheck samples per answer")
    parser.add_argument("--max-new-tokens", type=int, default=12)
    parser.add_argument("--tier2", action="store_true", help="the opt-in tier instead (records hallucination-qwen05)")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    header = common.machine_header()  # the load before this run adds its own
    if args.tier2:
        loaded = common.load_second_tier()
        if loaded is None:
            return
        (model, tok), model_name, name = loaded, models.SECOND_TIER, NAME_TIER2
    else:
        (model, tok), model_name, name = models.load(), models.DEFAULT_MODEL, NAME
    data = measure(model, tok, args.quick, args.samples, args.max_new_tokens)
    text = report(data, model_name, header)
    print(text)
    if not args.quick:
        print(common.write_result(name, text, data=data))


if __name__ == "__main__":
    main()
