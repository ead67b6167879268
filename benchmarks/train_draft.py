"""Train chapter 07's draft model for SmolLM2-135M-Instruct by distillation from the target itself.

1. data (llmlab/data/ch07_distill.safetensors, shipped; rebuilt only with --regenerate):
   - questions: the 320 distillation prompts of llmlab/data/ch07_prompts.json plus --questions more that the
     target writes itself (Magpie-style: the chat template up to the user turn, sampled at temperature 1,
     seeded per batch); any that repeats an evaluation prompt is dropped;
   - answers: the target's greedy answer to each question (what the draft must predict at temperature 0).
2. vocabulary: the --vocab most frequent answer tokens form the draft's reduced head (rows of the target's head).
3. model: --layers layers initialised from the target's first ones (MLP narrowed to --intermediate-size
   channels); the target's embedding and head rows frozen; layers and final norm trained to match the target's
   next-token distribution (restricted to the vocabulary) at every answer position: token-level knowledge
   distillation, the target's logits computed on the fly.
4. writes --out (llmlab/data/ch07_draft/: float32 safetensors and draft_config.json with the losses and the
   greedy acceptance α on the 20 evaluation prompts, before and after training).

It runs on models.device(): minutes on a GPU, hours on a laptop CPU (the shipped draft was trained on a GPU;
its config says where and how long). Regenerated data is deterministic on one machine, not across devices.

--kind feature trains the EAGLE-style feature draft instead (llmlab/speculative/feature_draft.py): the same
rows and vocabulary; the target's final-norm hidden states computed with the kit's forward for as many rows as
--feature-seconds allows; one decoder layer (initialised from the target's last) trained for --max-seconds on KL
to the target's next-token distribution plus --feature-weight × smooth-L1 to its next feature, with --unroll draft
steps on its own predicted features (training-time test, EAGLE-3; step k weighted --unroll-decay^k); bf16 files in
llmlab/data/ch07_feature_draft/ with a config recording the data, time and α.

Run: python benchmarks/train_draft.py [--regenerate --questions 4000] [--epochs 8 --max-seconds 300]
     python benchmarks/train_draft.py --kind feature --feature-seconds 150 --max-seconds 300
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab import attention, models
from llmlab import speculative as S
from llmlab.speculative import draft_model as D
from llmlab.speculative import generate

DATA = Path(D.PROMPTS).with_name("ch07_distill.safetensors")


def user_prefix(tokenizer) -> str:
    """The chat template's text up to where a user message starts (system turn included)."""
    marker = "\u0000QUESTION\u0000"
    text = tokenizer.apply_chat_template([{"role": "user", "content": marker}], add_generation_prompt=True,
                                         tokenize=False)
    return text.split(marker)[0]


@torch.inference_mode()
def self_questions(model, tokenizer, count: int, seed: int, batch: int, max_tokens: int = 48) -> list[str]:
    """`count` user questions the target writes itself after the template's 'user' header, seeded per batch."""
    prefix = tokenizer(user_prefix(tokenizer), return_tensors="pt", add_special_tokens=False)["input_ids"]
    prefix = prefix.to(model.device)
    evals = {p.strip().lower() for p in D.prompts("eval")}
    out: list[str] = []
    seen: set[str] = set()
    round_ = 0
    while len(out) < count and round_ < 4 * max(1, count // batch + 1):
        torch.manual_seed(seed + round_)
        ids = prefix.expand(batch, -1)
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                             top_p=0.95, max_new_tokens=max_tokens, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.eos_token_id)[:, prefix.shape[1]:]
        for row in gen.tolist():
            if tokenizer.eos_token_id not in row:
                continue  # ran past max_tokens: not a finished question
            text = tokenizer.decode(row[:row.index(tokenizer.eos_token_id)], skip_special_tokens=True).strip()
            key = text.lower()
            if len(text) >= 12 and key not in seen and key not in evals:
                seen.add(key)
                out.append(text)
        round_ += 1
        print(f"  {len(out)}/{count} questions written", flush=True)
    return out[:count]


@torch.inference_mode()
def greedy_answers(model, tokenizer, questions: list[str], max_new_tokens: int, batch: int) -> list[dict]:
    """The target's greedy answer ids to each chat-formatted question (batched, left-padded)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:  # some transformers versions convert the GGUF tokenizer without one
        tokenizer.pad_token = tokenizer.eos_token
    rows = []
    for i in range(0, len(questions), batch):
        chunk = questions[i:i + batch]
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                               tokenize=False) for q in chunk]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        for j in range(len(chunk)):
            prompt_ids = enc["input_ids"][j][enc["attention_mask"][j].bool()].tolist()
            answer = out[j, enc["input_ids"].shape[1]:].tolist()
            if tokenizer.eos_token_id in answer:
                answer = answer[:answer.index(tokenizer.eos_token_id) + 1]
            rows.append({"prompt_ids": prompt_ids, "answer_ids": answer})
        print(f"  {len(rows)}/{len(questions)} answered", flush=True)
    return rows


def save_rows(rows: list[dict], path: Path = DATA) -> None:
    """Rows of prompt and answer ids as three flat int32 tensors (compact, exact)."""
    from safetensors.torch import save_file

    seqs = [r["prompt_ids"] + r["answer_ids"] for r in rows]
    save_file({"ids": torch.tensor([t for s in seqs for t in s], dtype=torch.int32),
               "lengths": torch.tensor([len(s) for s in seqs], dtype=torch.int32),
               "prompt_lengths": torch.tensor([len(r["prompt_ids"]) for r in rows], dtype=torch.int32)}, str(path))


def load_rows(path: Path = DATA) -> list[dict]:
    """The rows save_rows wrote."""
    from safetensors.torch import load_file

    t = load_file(str(path))
    rows, at = [], 0
    for n, p in zip(t["lengths"].tolist(), t["prompt_lengths"].tolist()):
        seq = t["ids"][at:at + n].tolist()
        rows.append({"prompt_ids": seq[:p], "answer_ids": seq[p:]})
        at += n
    return rows


def choose_vocab(rows: list[dict], size: int) -> torch.Tensor:
    """The `size` most frequent answer tokens (sorted ids); prints their coverage of the answers."""
    counts = Counter(t for r in rows for t in r["answer_ids"])
    keep = [t for t, _ in counts.most_common(size)]
    covered = sum(counts[t] for t in keep) / sum(counts.values())
    print(f"vocabulary: {len(counts)} distinct answer tokens; the top {len(keep)} cover {covered:.1%} of them")
    return torch.tensor(sorted(keep))


def batches(rows: list[dict], batch: int, seed: int, shuffle: bool = True):
    """Shuffled (ids, mask of positions whose next token is an answer token) batches, right-padded with 0."""
    order = list(range(len(rows)))
    if shuffle:
        random.Random(seed).shuffle(order)
    for i in range(0, len(order), batch):
        chunk = [rows[j] for j in order[i:i + batch]]
        seqs = [r["prompt_ids"] + r["answer_ids"] for r in chunk]
        width = max(map(len, seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.bool)
        for k, (r, s) in enumerate(zip(chunk, seqs)):
            ids[k, :len(s)] = torch.tensor(s)
            mask[k, len(r["prompt_ids"]) - 1:len(s) - 1] = True  # position t predicts token t+1
        yield ids, mask


def train(draft, target, head: torch.Tensor, rows: list[dict], vocab_ids: torch.Tensor, epochs: int, batch: int,
          lr: float, seed: int, max_seconds: float) -> list[float]:
    """KL from the target's next-token distribution (over vocab_ids) to the draft's, at answer positions."""
    torch.manual_seed(seed)
    device = head.device
    for name, p in draft.named_parameters():
        p.requires_grad_(name.startswith("model.layers.") or name == "model.norm.weight")
    params = [p for p in draft.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    steps = epochs * math.ceil(len(rows) / batch)
    warmup = max(1, steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(
        math.pi * min(s, steps) / steps)))
    vocab_ids = vocab_ids.to(device)
    losses, step, start = [], 0, time.time()
    draft.train()
    for epoch in range(epochs):
        for ids, mask in batches(rows, batch, seed + epoch):
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                p = target(input_ids=ids).logits[mask].index_select(-1, vocab_ids).float().log_softmax(-1)
            hidden = draft.model(input_ids=ids).last_hidden_state[mask]
            q = F.linear(hidden, head).log_softmax(-1)
            loss = F.kl_div(q, p, log_target=True, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            step += 1
            if step % 25 == 0 or step == steps:
                print(f"  step {step}/{steps} epoch {epoch + 1} KL {sum(losses[-25:]) / len(losses[-25:]):.3f} "
                      f"({time.time() - start:.0f} s)", flush=True)
            if time.time() - start > max_seconds:
                print(f"  stopped at --max-seconds {max_seconds:.0f} after {step}/{steps} steps", flush=True)
                draft.eval()
                return losses
    draft.eval()
    return losses


def acceptance(target_w, draft, vocab_ids, tokenizer, prompts: list[str], new_tokens: int = 64) -> float:
    """Greedy per-token acceptance rate α of the draft (reduced head) on prompts, γ = 4."""
    spec = D.draft_from_model(draft, target_w, vocab_ids.to(target_w.embed.device))
    accepted = rejected = 0
    for p in prompts:
        ids = D.encode(tokenizer, p).to(target_w.embed.device)
        r = generate(target_w, spec, ids, new_tokens, gamma=4, eos_token_id=tokenizer.eos_token_id)
        accepted, rejected = accepted + r.accepted, rejected + r.rejections
    return accepted / max(accepted + rejected, 1)


@torch.inference_mode()
def row_features(target_w, rows: list[dict], max_seconds: float, seed: int, batch: int = 8) -> list[dict]:
    """Rows (seeded order) with the target's final-norm hidden states (len, hidden), until max_seconds is spent."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    out, start = [], time.time()
    for i in range(0, len(order), batch):
        chunk = [rows[j] for j in order[i:i + batch]]
        ids, _ = next(batches(chunk, len(chunk), 0, shuffle=False))
        hidden: list = []
        attention.forward(target_w, ids.to(target_w.embed.device), features=hidden)
        for k, r in enumerate(chunk):
            n = len(r["prompt_ids"]) + len(r["answer_ids"])
            out.append({**r, "features": hidden[0][k, :n].float().cpu()})
        if time.time() - start > max_seconds:
            break
    tokens = sum(len(r["features"]) for r in out)
    print(f"target features of {len(out)} rows ({tokens} tokens) in {time.time() - start:.0f} s", flush=True)
    return out


def feature_batch(chunk: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (b, W), features (b, W, hidden), mask (b, W - 1) of pairs t whose token t+2 is an answer token)."""
    width = max(len(r["features"]) for r in chunk)
    ids = torch.zeros(len(chunk), width, dtype=torch.long)
    feats = torch.zeros(len(chunk), width, chunk[0]["features"].shape[1])
    mask = torch.zeros(len(chunk), width - 1, dtype=torch.bool)
    for k, r in enumerate(chunk):
        seq, n, p = r["prompt_ids"] + r["answer_ids"], len(r["features"]), len(r["prompt_ids"])
        ids[k, :n], feats[k, :n] = torch.tensor(seq[:n]), r["features"]
        mask[k, max(p - 2, 0):n - 2] = True  # pair t = (f_t, token t+1) predicts token t+2
    return ids, feats, mask


def train_feature(target_w, data: list[dict], vocab_ids: torch.Tensor, args) -> tuple[dict, list[float], int]:
    """A feature draft: KL to the target's next-token distribution (over vocab_ids) + smooth-L1 to its next
    feature, at answer positions; returns the tensors, the losses and the number of epochs begun."""
    from dataclasses import replace

    from llmlab.attention import Layer
    from llmlab.speculative import feature_draft as FD

    torch.manual_seed(args.seed)
    device = target_w.embed.device
    params = {k: torch.nn.Parameter(v) for k, v in FD.initial_tensors(target_w, args.intermediate_size).items()}
    rows_w = target_w.lm_head.index_select(0, vocab_ids.to(target_w.embed.device)).float().contiguous()
    base = replace(target_w, lm_head=rows_w, head_rows=None)
    opt = torch.optim.AdamW(params.values(), lr=args.lr, weight_decay=0.0)
    steps = args.epochs * math.ceil(len(data) / args.batch)
    warmup = max(1, steps // 50)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(
        math.pi * min(s, steps) / steps)))
    losses, step, start = [], 0, time.time()
    for epoch in range(args.epochs):
        order = list(range(len(data)))
        random.Random(args.seed + epoch).shuffle(order)
        for i in range(0, len(order), args.batch):
            ids, feats, mask = feature_batch([data[j] for j in order[i:i + args.batch]])
            mask = mask.to(device)
            layer = Layer(**{k: params[f"layer.{k}"] for k in FD.LAYER_KEYS})
            head = FD.FeatureHead(params["fc"], replace(base, layers=[layer], final_norm=params["norm"],
                                                        intermediate_size=layer.wgate.shape[0]))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                hs = FD.unrolled_features(head, ids[:, 1:].to(device), feats[:, :-1].to(device), args.unroll)
            loss, kls = 0.0, []
            for k, h in enumerate(hs):  # step k + 1 is valid at pairs j >= k; its labels are step 1's
                m = mask.clone()
                m[:, :k] = False
                with torch.no_grad():
                    true = feats[:, 1:].to(device)[m]
                    p = F.linear(true, rows_w).log_softmax(-1)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                    logits = F.linear(h[m], rows_w)
                kl = F.kl_div(logits.float().log_softmax(-1), p, log_target=True, reduction="batchmean")
                reg = F.smooth_l1_loss(h[m].float(), true)
                loss = loss + args.unroll_decay ** k * (kl + args.feature_weight * reg)
                kls.append(kl.item())
            kl = torch.tensor(kls[0])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            opt.step()
            sched.step()
            losses.append(kl.item())
            step += 1
            if step % 25 == 0:
                print(f"  step {step}/{steps} epoch {epoch + 1} KL {sum(losses[-25:]) / 25:.3f} (by draft step "
                      f"{', '.join(f'{x:.2f}' for x in kls)}) reg {reg.item():.3f} ({time.time() - start:.0f} s)",
                      flush=True)
            if time.time() - start > args.max_seconds:
                print(f"  stopped at --max-seconds {args.max_seconds:.0f} after {step}/{steps} steps", flush=True)
                return {k: v.detach() for k, v in params.items()}, losses, epoch + 1
    return {k: v.detach() for k, v in params.items()}, losses, args.epochs


def feature_acceptance(target_w, draft, tokenizer, prompts: list[str], new_tokens: int = 64) -> dict:
    """Greedy α, α by draft position (γ = 4) and teacher-forced top-1 agreement of a feature draft on prompts."""
    from llmlab.speculative import teacher_forced_top1

    result = {"accepted": 0, "tried": 0, "at": [0] * 4, "tried_at": [0] * 4, "agree": 0, "pairs": 0}
    for p in prompts:
        ids = D.encode(tokenizer, p).to(target_w.embed.device)
        r = generate(target_w, draft, ids, new_tokens, gamma=4, eos_token_id=tokenizer.eos_token_id)
        acc, tried = r.position_counts(4)
        result["at"] = [a + b for a, b in zip(result["at"], acc)]
        result["tried_at"] = [a + b for a, b in zip(result["tried_at"], tried)]
        result["accepted"] += r.accepted
        result["tried"] += r.accepted + r.rejections
        agree = teacher_forced_top1(target_w, draft, torch.cat([ids.cpu(), torch.tensor([r.token_ids])], 1))
        answer = agree[ids.shape[1] - 2:]  # pairs whose token t+2 is an answer token
        result["agree"] += int(answer.sum())
        result["pairs"] += len(answer)
    return {"alpha": round(result["accepted"] / max(result["tried"], 1), 3),
            "alpha_by_position": [round(a / t, 3) if t else None for a, t in zip(result["at"], result["tried_at"])],
            "teacher_forced_top1": round(result["agree"] / max(result["pairs"], 1), 3)}


def main_feature(args, model, tokenizer, rows: list[dict]) -> None:
    """--kind feature: target features (time-boxed), training (time-boxed), α, and the shipped files."""
    from llmlab.speculative import feature_draft as FD

    vocab_ids = choose_vocab(rows, args.vocab)
    target_w = attention.from_model(model, max_positions=2048)
    start = time.time()
    source = S.cast_weights(target_w, torch.bfloat16) if args.bf16 else target_w
    data = row_features(source, rows, args.feature_seconds, args.seed)
    del source
    feature_seconds = time.time() - start
    start = time.time()
    tensors, losses, epochs = train_feature(target_w, data, vocab_ids, args)
    seconds = time.time() - start
    draft = FD.FeatureDraft(FD.head_from_tensors(tensors, target_w, vocab_ids), vocab_ids, tokenizer)
    after = feature_acceptance(target_w, draft, tokenizer, D.prompts("eval")[:args.eval_prompts])
    print(f"feature draft after training: {after} ({seconds:.0f} s of training)", flush=True)
    tail = losses[-25:]
    device = target_w.embed.device
    info = {"kind": "feature", "feature": "the target's final-norm output (what its head reads)", "layers": 1,
            "intermediate_size": args.intermediate_size, "vocab": len(vocab_ids), "epochs_begun": epochs,
            "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "feature_weight": args.feature_weight,
            "unroll": args.unroll, "unroll_decay": args.unroll_decay,
            "seed": args.seed, "steps": len(losses), "rows": len(data),
            "tokens": sum(len(r["features"]) for r in data),
            "answer_tokens": sum(len(r["answer_ids"]) for r in data), "feature_seconds": round(feature_seconds),
            "train_seconds": round(seconds),
            "trained_on": torch.cuda.get_device_name() if device.type == "cuda" else
            f"{device.type}, {torch.get_num_threads()} threads", "stored_as": "bfloat16",
            "features_and_forward_in": "bfloat16 (autocast; float32 master weights)" if args.bf16 else "float32",
            "eval_prompts": args.eval_prompts, **{f"{k}_after": v for k, v in after.items()},
            "final_kl": round(sum(tail) / len(tail), 3), "kl_every_25_steps": [round(x, 3) for x in losses[::25]]}
    path = FD.save_feature_draft(tensors, vocab_ids, info, args.out or FD.FEATURE_DIR)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regenerate", action="store_true", help="rebuild the distillation data")
    ap.add_argument("--questions", type=int, default=4000, help="questions the target writes itself")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--gen-batch", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--intermediate-size", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=3600, help="stop training after this long")
    ap.add_argument("--kind", choices=["token", "feature"], default="token",
                    help="token: the 2-layer token draft; feature: the 1-layer EAGLE-style feature draft")
    ap.add_argument("--feature-seconds", type=float, default=150,
                    help="--kind feature: seconds spent computing the target's features (rows in seeded order)")
    ap.add_argument("--bf16", action="store_true",
                    help="--kind feature: target features and the draft's forward in bf16 (about 2x faster on CPU)")
    ap.add_argument("--unroll", type=int, default=1,
                    help="--kind feature: training-time test, draft steps unrolled on the draft's own features")
    ap.add_argument("--unroll-decay", type=float, default=0.8, help="--kind feature: loss weight decay per step")
    ap.add_argument("--feature-weight", type=float, default=1.0, help="--kind feature: weight of the feature loss")
    ap.add_argument("--out", type=Path, default=None, help="default: llmlab/data/ch07_draft/ or ch07_feature_draft/")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--eval-prompts", type=int, default=20, help="evaluation prompts for the acceptance printout")
    args = ap.parse_args()

    device = models.device()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    model, tokenizer = models.load(device=device)
    if args.regenerate or not args.data.exists():
        start = time.time()
        questions = D.prompts("train") + self_questions(model, tokenizer, args.questions, args.seed,
                                                          args.gen_batch)
        save_rows(greedy_answers(model, tokenizer, questions, args.max_new_tokens, args.gen_batch), args.data)
        print(f"distillation data written to {args.data} in {time.time() - start:.0f} s", flush=True)
    rows = load_rows(args.data)
    print(f"{len(rows)} distillation answers, {sum(len(r['answer_ids']) for r in rows)} answer tokens")
    if args.kind == "feature":
        main_feature(args, model, tokenizer, rows)
        return
    vocab_ids = choose_vocab(rows, args.vocab)
    draft = D.init_from_target(model, args.layers, args.intermediate_size).to(device)
    head = model.get_input_embeddings().weight.detach()[vocab_ids.to(device)].clone()
    target_w = attention.from_model(model, max_positions=2048)
    eval_prompts = D.prompts("eval")[:args.eval_prompts]
    before = acceptance(target_w, draft, vocab_ids, tokenizer, eval_prompts)
    print(f"greedy acceptance before training (the target's first layers): {before:.3f}", flush=True)
    start = time.time()
    losses = train(draft, model, head, rows, vocab_ids, args.epochs, args.batch, args.lr, args.seed,
                   args.max_seconds)
    seconds = time.time() - start
    after = acceptance(target_w, draft, vocab_ids, tokenizer, eval_prompts)
    print(f"greedy acceptance after training: {after:.3f} ({seconds:.0f} s of training on {device})")
    tail = losses[-25:]
    info = {"vocab": len(vocab_ids), "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
            "seed": args.seed, "steps": len(losses), "train_seconds": round(seconds),
            "trained_on": torch.cuda.get_device_name() if device.type == "cuda" else device.type,
            "rows": len(rows), "alpha_before": round(before, 3), "alpha_after": round(after, 3),
            "final_kl": round(sum(tail) / len(tail), 3), "kl_every_25_steps": [round(x, 3) for x in losses[::25]]}
    path = D.save_draft(draft.cpu(), vocab_ids, args.out or D.DRAFT_DIR, info)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
