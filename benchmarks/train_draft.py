"""Train chapter 07's draft model for SmolLM2-135M-Instruct (sequence-level distillation, a few minutes on CPU).

1. data: the target's greedy answers to the first 300 (shuffled) of the 320 distillation prompts of
   llmlab/data/ch07_prompts.json (disjoint
   from the 20 evaluation prompts), written to llmlab/data/ch07_distill.jsonl (shipped; regenerated only with
   --regenerate, deterministically: greedy decoding).
2. vocabulary: the --vocab most frequent answer tokens (the draft's reduced head; the shipped data has only 2,561).
3. model: 2 layers initialised from the target's first two (MLP narrowed to 768 channels), the target's embedding
   and head rows frozen; train layers + final norm with cross-entropy on the target's answer tokens.
4. write llmlab/data/ch07_draft/ (float32 safetensors, ~18 MB) and print the greedy acceptance on held-out prompts.

The shipped draft: --epochs 4 --threads 1 (631 s on a machine at load 23; loss 4.73; greedy α 0.063): too little
training to be a useful draft. More epochs and all 320 prompts are the first things to try.

Run under the shared lock: flock /tmp/llmlab-heavy.lock python benchmarks/train_draft.py
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab import attention, models
from llmlab.speculative import draft_model as D
from llmlab.speculative import generate

DATA = Path(D.PROMPTS).with_name("ch07_distill.jsonl")


@torch.inference_mode()
def make_data(model, tokenizer, prompts: list[str], max_new_tokens: int, batch: int = 20) -> list[dict]:
    """The target's greedy answer ids to each chat-formatted prompt (batched, left-padded)."""
    tokenizer.padding_side = "left"
    rows = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                               tokenize=False) for p in chunk]
        enc = tokenizer(texts, return_tensors="pt", padding=True)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        for j, p in enumerate(chunk):
            prompt_ids = enc["input_ids"][j][enc["attention_mask"][j].bool()].tolist()
            answer = out[j, enc["input_ids"].shape[1]:].tolist()
            if tokenizer.eos_token_id in answer:
                answer = answer[:answer.index(tokenizer.eos_token_id) + 1]
            rows.append({"prompt": p, "prompt_ids": prompt_ids, "answer_ids": answer})
        print(f"  generated {len(rows)}/{len(prompts)}", flush=True)
    return rows


def write_data(model, tokenizer, max_new_tokens: int, limit: int | None = None, batch: int = 20) -> None:
    """Answer the distillation prompts (shuffled with seed 0) batch by batch, appending to DATA as it goes."""
    prompts = D.prompts("train")
    random.Random(0).shuffle(prompts)
    prompts = prompts[:limit]
    start = time.time()
    DATA.write_text("")
    for i in range(0, len(prompts), batch):
        rows = make_data(model, tokenizer, prompts[i:i + batch], max_new_tokens, batch)
        with DATA.open("a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        print(f"  {i + len(rows)}/{len(prompts)} prompts answered ({time.time() - start:.0f} s)", flush=True)


def choose_vocab(rows: list[dict], size: int) -> torch.Tensor:
    """The `size` most frequent answer tokens (sorted ids); prints their coverage of the answers."""
    counts = Counter(t for r in rows for t in r["answer_ids"])
    keep = [t for t, _ in counts.most_common(size)]
    covered = sum(counts[t] for t in keep) / sum(counts.values())
    print(f"vocabulary: {len(counts)} distinct answer tokens; the top {len(keep)} cover {covered:.1%} of them")
    return torch.tensor(sorted(keep))


def batches(rows: list[dict], vocab_ids: torch.Tensor, batch: int, seed: int):
    """Shuffled (input ids, labels in the reduced vocabulary, -100 = ignore) batches, right-padded."""
    index = torch.full((int(vocab_ids.max()) + 1,), -100, dtype=torch.long)
    index[vocab_ids] = torch.arange(len(vocab_ids))
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    for i in range(0, len(order), batch):
        chunk = [rows[j] for j in order[i:i + batch]]
        seqs = [r["prompt_ids"] + r["answer_ids"] for r in chunk]
        width = max(map(len, seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        labels = torch.full((len(seqs), width), -100, dtype=torch.long)
        for k, (r, s) in enumerate(zip(chunk, seqs)):
            ids[k, :len(s)] = torch.tensor(s)
            n = len(r["prompt_ids"])
            target = torch.tensor(s[n:])  # label at position t is token t+1: answers only
            mapped = torch.where(target < len(index), index[target.clamp(max=len(index) - 1)], -100)
            labels[k, n - 1:len(s) - 1] = mapped
        yield ids, labels


def train(draft, head: torch.Tensor, rows: list[dict], vocab_ids: torch.Tensor, epochs: int, batch: int,
          lr: float, seed: int) -> list[float]:
    """Cross-entropy of the reduced head on the target's answers; embedding and head frozen. Returns losses."""
    torch.manual_seed(seed)
    draft.model.embed_tokens.weight.requires_grad_(False)
    draft.lm_head.weight.requires_grad_(False)
    params = [p for n, p in draft.named_parameters() if n.startswith("model.layers.") or n == "model.norm.weight"]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps = epochs * math.ceil(len(rows) / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(
        math.pi * min(s, steps) / steps)))
    losses, step, start = [], 0, time.time()
    draft.train()
    for epoch in range(epochs):
        for ids, labels in batches(rows, vocab_ids, batch, seed + epoch):
            hidden = draft.model(input_ids=ids).last_hidden_state
            logits = F.linear(hidden, head)
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step % 5 == 0 or step == steps:
                print(f"  step {step}/{steps} epoch {epoch + 1} loss {sum(losses[-5:]) / len(losses[-5:]):.3f} "
                      f"({time.time() - start:.0f} s)", flush=True)
    draft.eval()
    return losses


def acceptance(target_w, draft, vocab_ids, tokenizer, prompts: list[str], new_tokens: int = 32) -> float:
    """Greedy acceptance rate α of the draft (reduced head) on prompts, γ = 4."""
    spec = D.draft_from_model(draft, target_w, vocab_ids)
    accepted = proposed = 0
    for p in prompts:
        r = generate(target_w, spec, D.encode(tokenizer, p), new_tokens, gamma=4,
                     eos_token_id=tokenizer.eos_token_id)
        accepted, proposed = accepted + r.accepted, proposed + r.proposed
    return accepted / max(proposed, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regenerate", action="store_true", help="regenerate the distillation data")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--prompts", type=int, default=300, help="answer only the first N (shuffled) prompts")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=D.DRAFT_DIR)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is fastest on a crowded machine)")
    ap.add_argument("--eval-prompts", type=int, default=4, help="evaluation prompts for the acceptance printout")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tokenizer = models.load(device="cpu")
    if args.regenerate or not DATA.exists():
        write_data(model, tokenizer, args.max_new_tokens, args.prompts)
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    print(f"{len(rows)} distillation answers, {sum(len(r['answer_ids']) for r in rows)} tokens")
    vocab_ids = choose_vocab(rows, args.vocab)
    draft = D.init_from_target(model)
    head = model.get_input_embeddings().weight.detach()[vocab_ids].clone()
    target_w = attention.from_model(model, max_positions=2048)
    eval_prompts = D.prompts("eval")[:args.eval_prompts]
    before = acceptance(target_w, draft, vocab_ids, tokenizer, eval_prompts)
    print(f"greedy acceptance before training (init from the target's first layers): {before:.3f}")
    start = time.time()
    losses = train(draft, head, rows, vocab_ids, args.epochs, args.batch, args.lr, args.seed)
    seconds = time.time() - start
    after = acceptance(target_w, draft, vocab_ids, tokenizer, eval_prompts)
    print(f"greedy acceptance after training: {after:.3f} ({seconds:.0f} s of training)")
    info = {"vocab": len(vocab_ids), "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
            "seed": args.seed, "train_seconds": round(seconds), "alpha_before": round(before, 3),
            "alpha_after": round(after, 3), "final_loss": round(sum(losses[-5:]) / len(losses[-5:]), 3),
            "losses": [round(x, 3) for x in losses]}
    path = D.save_draft(draft, vocab_ids, args.out, info)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
