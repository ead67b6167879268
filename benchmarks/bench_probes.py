"""Chapter 08: linear probes per layer on cached hidden states, and the time one shared forward pass saves.

Measures, on the 96 sentences of llmlab/data/ch08_sentences.jsonl (train/test split by sentence group):
held-out accuracy of a linear probe at every layer for sentiment, topic and language; then, with one head per
task at the best layer, the seconds to serve all three tasks from one cached forward pass vs one full forward
pass per task (LLMs in Production, listing 12.4's idea). Writes the markdown table and
llmlab/data/ch08_probe_results.json, which notebook 08 plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from common import best_of, machine_header, write_result

from llmlab import interpret, models
from llmlab.tasks import sentences

SHIPPED = Path(__file__).resolve().parent.parent / "llmlab" / "data" / "ch08_probe_results.json"


def measure(repeats: int = 3) -> dict:
    """Per-layer probe accuracies for every task and the shared-vs-separate serving times."""
    model, tok = models.load(device="cpu")
    rows = sentences.load_sentences()
    texts = [r["text"] for r in rows]
    train, test = sentences.split_by_group(rows)
    feats, feature_seconds = best_of(lambda: interpret.hidden_features(model, tok, texts), repeats=1)
    accuracy, heads, classes = {}, {}, {}
    for task in sentences.TASKS:
        labels, classes[task] = sentences.label_ids(rows, task)
        accuracy[task] = [round(float(a), 4) for a in interpret.probe_accuracy_by_layer(feats, labels, train, test)]
    layer = max(range(feats.shape[0]), key=lambda i: sum(accuracy[t][i] for t in sentences.TASKS))
    for task in sentences.TASKS:
        labels, _ = sentences.label_ids(rows, task)
        heads[task] = interpret.train_probe(feats[layer][train], torch.tensor(labels)[train], len(classes[task]))
    timing = interpret.time_shared_vs_separate(model, tok, texts, interpret.MultiTaskHeads(layer, heads, classes),
                                               repeats=repeats)
    return {"header": machine_header(), "n_train": len(train), "n_test": len(test), "accuracy": accuracy,
            "classes": classes, "head_layer": layer, "feature_seconds": round(feature_seconds, 3),
            "timing": {k: round(v, 3) for k, v in timing.items()}, "texts": len(texts)}


def format_report(r: dict) -> str:
    """Markdown: the accuracy table (every 3rd layer and the last) and the timing line."""
    layers = len(r["accuracy"]["sentiment"])
    shown = sorted(set(range(0, layers, 3)) | {layers - 1})
    lines = ["# Linear probes on cached hidden states (chapter 08)", "", r["header"], "",
             f"{r['texts']} sentences, {r['n_train']} train / {r['n_test']} test (split by sentence group; "
             f"mean-pooled residual stream; layer 0 = embeddings)", "",
             "| layer | " + " | ".join(sentences.TASKS) + " |", "|---|" + "---|" * len(sentences.TASKS)]
    for i in shown:
        lines.append(f"| {i} | " + " | ".join(f"{r['accuracy'][t][i]:.2f}" for t in sentences.TASKS) + " |")
    t = r["timing"]
    lines += ["", f"Heads at layer {r['head_layer']}. Serving {len(sentences.TASKS)} tasks for {r['texts']} "
                  f"sentences (best of repeats): one cached forward pass {t['shared']:.2f} s, one forward pass "
                  f"per task {t['separate']:.2f} s, saved {t['saved']:.2f} s "
                  f"({t['saved'] / t['separate']:.0%})."]
    return "\n".join(lines)


def main() -> None:
    """Measure, print and write the report and the shipped JSON."""
    result = measure()
    report = format_report(result)
    print(report)
    print(f"wrote {write_result('probes', report, data=result)}")
    SHIPPED.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {SHIPPED}")


if __name__ == "__main__":
    main()
