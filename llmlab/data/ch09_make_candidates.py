"""Generate chapter 09's pass@k candidates with the local model and write ch09_candidates.jsonl.

Run `python -m llmlab.data.ch09_make_candidates` (a few minutes on 2 CPU cores). The first line holds the settings,
then one line per problem: {"id": ..., "candidates": [raw reply, ...]} with N_SAMPLES sampled replies each.
"""

from __future__ import annotations

import json
import time

import torch

from llmlab import models, tokens
from llmlab.tasks import coding

N_SAMPLES = 10
TEMPERATURE = 0.8
TOP_P = 0.95
MAX_NEW_TOKENS = 96
SEED = 9


@torch.inference_mode()
def sample_replies(model, tokenizer, prompt: str, n: int, seed: int,
                   max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """n sampled chat replies to one prompt, generated as one batch."""
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    torch.manual_seed(seed)
    out = model.generate(**inputs, do_sample=True, temperature=TEMPERATURE, top_p=TOP_P, top_k=0,
                         max_new_tokens=max_new_tokens, num_return_sequences=n,
                         pad_token_id=tokens.pad_token_id(tokenizer))
    return [tokenizer.decode(row[inputs["input_ids"].shape[1]:], skip_special_tokens=True) for row in out]


def main() -> None:
    model, tokenizer = models.load()
    settings = {"model": models.DEFAULT_MODEL, "n": N_SAMPLES, "temperature": TEMPERATURE, "top_p": TOP_P,
                "max_new_tokens": MAX_NEW_TOKENS, "seed": SEED}
    start = time.perf_counter()
    rows = [{"settings": settings}]
    for i, problem in enumerate(coding.load_problems()):
        rows.append({"id": problem.id, "candidates": sample_replies(model, tokenizer, coding.chat_prompt(problem),
                                                                    N_SAMPLES, SEED + i)})
        print(f"{problem.id}: done ({time.perf_counter() - start:.0f} s)")
    coding.CANDIDATES.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {coding.CANDIDATES}")


if __name__ == "__main__":
    main()
