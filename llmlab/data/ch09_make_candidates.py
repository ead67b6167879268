"""Generate chapter 09's pass@k candidates with the local model and write ch09_candidates.jsonl.

Run `python -m llmlab.data.ch09_make_candidates` (minutes on a CPU). The first line holds the settings,
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
MAX_NEW_TOKENS = 80
SEED = 9


@torch.inference_mode()
def sample_replies(model, tokenizer, prompt: str | list[str], n: int, seed: int,
                   max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """n sampled chat replies to each prompt (one str or a list), generated as one left-padded batch; for a list,
    the replies of prompt i are items i*n .. i*n+n-1."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    tokenizer.padding_side = "left"
    inputs = tokenizer.apply_chat_template([[{"role": "user", "content": p}] for p in prompts],
                                           add_generation_prompt=True, padding=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    torch.manual_seed(seed)
    out = model.generate(**inputs, do_sample=True, temperature=TEMPERATURE, top_p=TOP_P, top_k=0,
                         max_new_tokens=max_new_tokens, num_return_sequences=n,
                         pad_token_id=tokens.pad_token_id(tokenizer))
    return [tokenizer.decode(row[inputs["input_ids"].shape[1]:], skip_special_tokens=True) for row in out]


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
        replies = sample_replies(model, tokenizer, [coding.chat_prompt(p) for p in group], N_SAMPLES, SEED + first)
        for i, problem in enumerate(group):
            rows.append({"id": problem.id, "candidates": replies[i * N_SAMPLES:(i + 1) * N_SAMPLES]})
        print(f"{[p.id for p in group]}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    coding.CANDIDATES.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {coding.CANDIDATES}")


if __name__ == "__main__":
    main()
