"""Run the kit's model through EleutherAI's lm-evaluation-harness on one small task shipped with llmlab, offline.

lm-eval is NOT a dependency of llmlab (it pulls its own versions of several packages). Install it apart, e.g.
    pip install --target /tmp/lmeval lm_eval==0.4.13 evaluate sqlitedict pytablewriter word2number more_itertools \
        --no-deps
then run
    PYTHONPATH=$PWD:/tmp/lmeval HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 python benchmarks/lm_eval_harness.py
The task (llmlab/data/ch09_harness_mc.jsonl, 20 four-way questions written for llmlab) is a harness YAML task
reading a local json file, so nothing is downloaded; the harness scores each choice by its loglikelihood (acc) and
by its length-normalised loglikelihood (acc_norm). The same number from the kit's own scorer is printed beside it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_header, write_result  # noqa: E402

from llmlab import evaluation, models  # noqa: E402
from llmlab.tasks.jsonl import read_jsonl  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "llmlab" / "data" / "ch09_harness_mc.jsonl"
TASK = """\
task: llmlab_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def kit_accuracy(model, tokenizer) -> float:
    """The same task scored by the kit: the choice with the highest summed logprob after the prompt."""
    rows = read_jsonl(DATA)
    right = 0
    for row in rows:
        prompt = f"Question: {row['question']}\nAnswer:"
        scores = [evaluation.sequence_logprob(model, tokenizer, " " + choice, context=prompt)
                  for choice in row["choices"]]
        right += scores.index(max(scores)) == row["answer"]
    return right / len(rows)


def measure() -> dict:
    """Run the harness task on the kit's model and the kit's own scorer; returns the numbers."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    model, tokenizer = models.load(device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "llmlab_mc.yaml").write_text(TASK.format(data=DATA), encoding="utf-8")
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(model=HFLM(pretrained=model, tokenizer=tokenizer, batch_size=4),
                                      tasks=["llmlab_mc"], task_manager=TaskManager(include_path=folder),
                                      log_samples=False)
        seconds = time.perf_counter() - start
    result = out["results"]["llmlab_mc"]
    print(f"harness: {result}", flush=True)
    return {"lm_eval": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "?", "seconds": seconds,
            "acc": result["acc,none"], "acc_stderr": result.get("acc_stderr,none"),
            "acc_norm": result["acc_norm,none"], "kit_acc": kit_accuracy(model, tokenizer)}


def format_report(r: dict) -> str:
    """Markdown report of one harness run."""
    return (f"# lm-evaluation-harness on the kit's model\n\n{machine_header()}\n\n"
            f"lm-eval {r['lm_eval']}, task `llmlab_mc` (20 four-way questions, llmlab/data/ch09_harness_mc.jsonl), "
            f"model SmolLM2-135M-Instruct, CPU, {r['seconds']:.1f} s.\n\n"
            "| scorer | accuracy |\n|---|---|\n"
            f"| harness acc (summed loglikelihood) | {r['acc']:.2f} ± {r['acc_stderr'] or float('nan'):.2f} |\n"
            f"| harness acc_norm (per-byte loglikelihood) | {r['acc_norm']:.2f} |\n"
            f"| llmlab evaluation.sequence_logprob, same prompt | {r['kit_acc']:.2f} |\n")


if __name__ == "__main__":
    measured = measure()
    report = format_report(measured)
    print(report)
    print(write_result("lm-eval-harness", report, data=measured))
