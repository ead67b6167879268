"""Generate chapter 09's pass@k candidates with the local model and write ch09_candidates.jsonl.

Run `python scripts/data/ch09_make_candidates.py` (minutes on a CPU). The first line holds the settings,
then one line per problem: {"id": ..., "candidates": [raw reply, ...]} with N_SAMPLES sampled replies each.
"""

from __future__ import annotations

import json
import time

from llmlab import models
from llmlab.tasks import coding

N_SAMPLES = 10
TEMPERATURE = 0.8
TOP_P = 0.95
MAX_NEW_TOKENS = 80
SEED = 9


def main(chunk: int = 4) -> None:
    """Sample N_SAMPLES replies for every problem, `chunk` problems per batch, and write the file."""
    model, tokenizer = models.load()
    settings = {"model": models.DEFAULT_MODEL, "n": N_SAMPLES, "temperature": TEMPERATURE, "top_p": TOP_P,
                "max_new_tokens": MAX_NEW_TOKENS, "seed": SEED}
    start = time.perf_counter()
    rows = [{"settings": settings}]
    problems = coding.load_problems()
    for first in range(0, len(problems), chunk):
        group = problems[first:first + chunk]
        prompts = [coding.chat_prompt(p) for p in group]
        replies = coding.sample_replies(model, tokenizer, prompts, N_SAMPLES, SEED + first, MAX_NEW_TOKENS, TEMPERATURE,
                                        TOP_P)
        for i, problem in enumerate(group):
            rows.append({"id": problem.id, "candidates": replies[i * N_SAMPLES:(i + 1) * N_SAMPLES]})
        print(f"{[p.id for p in group]}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    coding.CANDIDATES.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {coding.CANDIDATES}")


if __name__ == "__main__":
    main()
