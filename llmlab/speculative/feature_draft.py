"""A feature-level (EAGLE-style) draft: one decoder layer that reads the target's last hidden state.

The feature f_t is the target's final-norm OUTPUT at position t (what its head reads: logits_t = head(f_t), the
prediction of token t+1). Draft position t reads the pair (f_t, embedding of token t+1), the token that f_t
produced, and predicts f_{t+1}, hence token t+2 (Li et al. 2024, EAGLE). While drafting, the predicted feature
stands in for the true one; after each verify pass the drafted positions are dropped and the accepted ones are
recomputed from the target's true features. The draft has its own KV cache, prefilled from the prompt's true
features. benchmarks/train_draft.py --kind feature trains it; llmlab/data/ch07_feature_draft/ ships it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab import validate
from llmlab.attention import (
    Layer,
    LlamaWeights,
    apply_rope,
    attention_block,
    forward,
    input_major,
    output_head,
    repeat_kv,
    rms_norm,
    swiglu_mlp,
)
from llmlab.kv_cache import KVCache
from llmlab.sampling import SamplingSettings
from llmlab.speculative.drafts import ReducedHead, checked_vocab_ids, roll_out

FEATURE_DIR = Path(__file__).resolve().parent.parent / "data" / "ch07_feature_draft"
WEIGHTS_FILE = "feature_draft.safetensors"
CONFIG_FILE = "feature_draft_config.json"
LAYER_KEYS = ("wqkv", "wo", "wgate", "wup", "wdown", "attn_norm", "mlp_norm")


@dataclass
class FeatureHead:
    """The draft: fc maps [embedding; feature] (2·hidden) to hidden, then one decoder layer and a final norm.

    weights is a one-layer LlamaWeights: the target's embedding, RoPE tables and (reduced) head rows, the draft's
    own layer and final norm (weights.final_norm).
    """

    fc: torch.Tensor
    weights: LlamaWeights


def feature_forward(head: FeatureHead, next_ids: torch.Tensor, features: torch.Tensor,
                    cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, predicted features) at draft positions reading features (b, s, hidden) and next_ids (b, s).

    Row t pairs f_t with token t+1; its outputs predict f_{t+1} and token t+2. With a cache, positions continue it.
    """
    h = predicted_features(head, next_ids, features, cache)
    return output_head(head.weights, h), h


def predicted_features(head: FeatureHead, next_ids: torch.Tensor, features: torch.Tensor,
                       cache: KVCache | None = None) -> torch.Tensor:
    """The draft's predicted next features (b, s, hidden): feature_forward without the head."""
    w = head.weights
    start = cache.length if cache is not None else 0
    x = F.linear(torch.cat([F.embedding(next_ids, w.embed), features.to(w.embed.dtype)], -1), head.fc)
    layer = w.layers[0]
    a, _ = attention_block(w, layer, 0, rms_norm(x, layer.attn_norm, w.eps), start, cache)
    x = x + a
    x = x + swiglu_mlp(rms_norm(x, layer.mlp_norm, w.eps), layer.wgate, layer.wup, layer.wdown)
    return rms_norm(x, w.final_norm, w.eps)


def unrolled_features(head: FeatureHead, next_ids: torch.Tensor, features: torch.Tensor,
                      steps: int) -> list[torch.Tensor]:
    """Training-time test (EAGLE-3): predicted features (b, s, hidden) after draft steps 1..steps, every position.

    Step k at pair j reads the feature step k-1 predicted at pair j-1 (step 1: the true f_j) and attends to the
    true pairs 0..j-k+1 and to its own chain's earlier steps, exactly as drafting does; valid where j >= k - 1.
    """
    validate.positive_int("steps", steps)
    w, layer = head.weights, head.weights.layers[0]
    b, s = next_ids.shape
    hq, hk, d = w.num_heads, w.num_kv_heads, w.head_dim
    emb, cos, sin = F.embedding(next_ids, w.embed), w.cos[:s], w.sin[:s]
    keys, values, outs, feats = [], [], [], features.to(w.embed.dtype)
    positions = torch.arange(s, device=next_ids.device)

    def shifted(t: torch.Tensor, by: int) -> torch.Tensor:  # t[..., j, :] -> t[..., j - by, :] (zeros before)
        return t if by == 0 else F.pad(t[..., :s - by, :], (0, 0, by, 0))

    for k in range(steps):
        x = F.linear(torch.cat([emb, feats], -1), head.fc)
        qkv = F.linear(rms_norm(x, layer.attn_norm, w.eps), layer.wqkv).view(b, s, hq + 2 * hk, d).transpose(1, 2)
        qk = apply_rope(qkv[:, :hq + hk], cos, sin)
        q = qk[:, :hq]
        keys.append(repeat_kv(qk[:, hq:], hq // hk))
        values.append(repeat_kv(qkv[:, hq + hk:], hq // hk))
        scores = (q @ keys[0].transpose(-1, -2)) * d ** -0.5
        scores = scores.masked_fill(positions[None, :] > positions[:, None] - k, float("-inf"))
        chain = [((q * shifted(keys[i], k - i)).sum(-1) * d ** -0.5).masked_fill(positions < k - i, float("-inf"))
                 for i in range(1, k + 1)]
        probs = torch.cat([scores] + [c[..., None] for c in chain], -1).softmax(-1).nan_to_num(0.0)
        out = probs[..., :s] @ values[0]
        for i in range(1, k + 1):
            out = out + probs[..., s + i - 1, None] * shifted(values[i], k - i)
        x = x + F.linear(out.transpose(1, 2).reshape(b, s, hq * d), layer.wo)
        x = x + swiglu_mlp(rms_norm(x, layer.mlp_norm, w.eps), layer.wgate, layer.wup, layer.wdown)
        h = rms_norm(x, w.final_norm, w.eps)
        outs.append(h)
        feats = F.pad(h[:, :-1], (0, 0, 1, 0))  # pair j next reads what pair j-1 predicted
    return outs


def feature_pairs(tokens: list[int], features: torch.Tensor) -> tuple[list[int], torch.Tensor]:
    """The draft's inputs for a committed prefix: feature f_t paired with token t+1, for every t with both."""
    validate.tensor("features", features, dims=2, allow_empty=True)
    n = min(features.shape[0], len(tokens) - 1)
    return tokens[1:n + 1], features[:max(n, 0)]


class FeatureDraft(ReducedHead):
    """Drafts with a FeatureHead: its own KV cache over true-feature positions, rolled back after every verify.

    reads_features tells the loop to pass the target's final-norm hidden states to start and commit.
    """

    kind = "feature"
    reads_features = True

    def __init__(self, head: FeatureHead, vocab_ids: torch.Tensor | None = None, tokenizer=None,
                 name: str = "feature draft"):
        if not isinstance(head, FeatureHead):
            raise TypeError(f"head must be a speculative.FeatureHead, got {type(head).__name__}")
        vocab_ids = checked_vocab_ids(vocab_ids, head.weights)
        self.head, self.vocab_ids, self.tokenizer, self.name = head, vocab_ids, tokenizer, name
        self.weights = head.weights
        self.cache: KVCache | None = None
        self.pending: torch.Tensor | None = None  # true features not yet fed (positions cache.length, ...)
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None  # logits and feature of the last true position
        self.true_length = 0  # cache positions computed from true features
        self.passes = 0

    def _step(self, next_ids: list[int], features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-position logits and predicted feature after feeding (feature, next token) rows into the cache."""
        self.passes += 1
        ids = torch.tensor([next_ids], device=self.device)
        logits, h = feature_forward(self.head, ids, features[None], self.cache)
        return logits[0, -1], h[0, -1:]

    def start(self, prompt: list[int], capacity: int, features: torch.Tensor | None = None) -> None:
        """Fresh cache; the prompt's true features (len(prompt) - 1, hidden) are fed at the first propose."""
        if features is None:
            raise ValueError("features must be the target's final-norm hidden states of the prompt, got None")
        validate.tensor("features", features, dims=2, allow_empty=True)
        if features.shape[0] != len(prompt) - 1:
            raise ValueError(f"features must cover the prompt but its last token ({len(prompt) - 1} rows), got "
                             f"{features.shape[0]}")
        self.cache = KVCache.for_weights(self.weights, 1, capacity)
        self.pending, self.last, self.passes, self.true_length = features, None, 0, 0

    def propose(self, tokens: list[int], gamma: int, settings: SamplingSettings,
                generator: torch.Generator) -> tuple[list[int], torch.Tensor | None]:
        """gamma tokens: the first from the last true position, each next from the feature the draft predicted."""
        at = self.cache.length
        if self.pending is not None and self.pending.shape[0]:
            next_ids, feats = feature_pairs(tokens[at:], self.pending)
            self.last = self._step(next_ids, feats)
        self.pending = None
        self.true_length = self.cache.length
        if self.last is None:  # a one-token prompt: no feature yet
            return [], None
        logits, h = self.last
        state = [h]  # the feature the next step reads: the head's own prediction once drafting starts

        def advance(token: int) -> torch.Tensor:
            next_logits, state[0] = self._step([token], state[0])
            return next_logits

        return roll_out(logits, advance, gamma, settings, tokens, generator, self.vocab_ids, self.vocab_size,
                        self._token)

    def commit(self, length: int, features: torch.Tensor | None = None) -> None:
        """Drop the drafted positions; keep the target's true features of positions up to length - 1."""
        if features is None:
            raise ValueError("features must be the target's final-norm hidden states of the verify pass, got None")
        self.cache.truncate(min(self.true_length, self.cache.length))
        self.pending = features if self.pending is None else torch.cat([self.pending, features])
        if self.cache.length + self.pending.shape[0] != length:
            raise ValueError(f"features must cover positions {self.cache.length}..{length - 1} "
                             f"({length - self.cache.length} rows), got {self.pending.shape[0]}")


@torch.inference_mode()
def teacher_forced_top1(target: LlamaWeights, draft: FeatureDraft, ids: torch.Tensor) -> torch.Tensor:
    """Bool (seq - 1,): at each t, whether the draft's top-1 from true features (f_t, token t+1) is the target's
    top-1 at t + 1 (its prediction of token t+2): position-1 agreement, computed in one pass without the loop."""
    validate.token_ids("ids", ids)
    hidden: list = []
    logits = forward(target, ids.to(target.embed.device), features=hidden)[0]
    ids = ids.to(draft.device)
    d_logits, _ = feature_forward(draft.head, ids[:, 1:], hidden[0][:, :-1])  # f_t with token t+1, written out
    rows = d_logits[0].argmax(-1)
    picked = rows if draft.vocab_ids is None else draft.vocab_ids[rows]
    return (picked == logits[1:].argmax(-1)).cpu()


def initial_tensors(target: LlamaWeights, intermediate_size: int, noise: float = 0.0,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """Float32 starting tensors ((out, in) layout): the target's last layer (MLP cut to its largest channels),
    its final norm, fc = [I | I] (embedding plus feature), each plus Gaussian noise of std noise · its own std."""
    validate.integer("intermediate_size", intermediate_size, low=1, high=target.intermediate_size)
    last = target.layers[-1]
    score = last.wdown.float().norm(dim=0) * last.wup.float().norm(dim=1)
    keep = score.topk(intermediate_size).indices.sort().values
    eye = torch.eye(target.hidden_size, device=target.embed.device)
    t = {"fc": torch.cat([eye, eye], 1), "layer.wqkv": last.wqkv, "layer.wo": last.wo,
         "layer.wgate": last.wgate[keep], "layer.wup": last.wup[keep], "layer.wdown": last.wdown[:, keep],
         "layer.attn_norm": last.attn_norm, "layer.mlp_norm": last.mlp_norm, "norm": target.final_norm}
    gen = torch.Generator(device=target.embed.device).manual_seed(seed)
    out = {}
    for k, v in t.items():
        v = v.detach().float().contiguous().clone()
        if noise and v.dim() == 2:
            v += noise * v.std() * torch.randn(v.shape, generator=gen, device=v.device)
        out[k] = v
    return out


def head_from_tensors(tensors: dict[str, torch.Tensor], target: LlamaWeights,
                      vocab_ids: torch.Tensor | None) -> FeatureHead:
    """A FeatureHead from named tensors (fc, layer.*, norm) on the target's embedding, RoPE and head rows."""
    dev, dtype = target.embed.device, target.embed.dtype
    t = {k: v.to(dev, dtype) for k, v in tensors.items()}
    layer = Layer(**{k: input_major(t[f"layer.{k}"]) if t[f"layer.{k}"].dim() == 2 else t[f"layer.{k}"]
                     for k in LAYER_KEYS})
    w = replace(target, intermediate_size=layer.wgate.shape[0], layers=[layer], final_norm=t["norm"])
    if vocab_ids is not None:
        rows = target.head_rows[1] if target.head_rows else target.lm_head
        rows = rows.index_select(0, vocab_ids.to(dev, torch.long))
        head = input_major(rows)
        w = replace(w, lm_head=head, head_rows=(head, rows))
    return FeatureHead(fc=input_major(t["fc"]), weights=w)


def save_feature_draft(tensors: dict[str, torch.Tensor], vocab_ids: torch.Tensor, info: dict,
                       folder: Path = FEATURE_DIR, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Write the trained tensors (in dtype), vocab_ids and the training record to folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {k: v.detach().to("cpu", dtype).contiguous() for k, v in tensors.items()}
    out["vocab_ids"] = vocab_ids.to(torch.int64).contiguous()
    save_file(out, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return folder / WEIGHTS_FILE


def trained_feature_draft(target: LlamaWeights, tokenizer=None, folder: Path = FEATURE_DIR) -> FeatureDraft:
    """The shipped feature draft for this target, in the target's dtype and on its device."""
    from safetensors.torch import load_file

    if not isinstance(target, LlamaWeights):
        raise TypeError(f"target must be llmlab.attention.LlamaWeights, got {type(target).__name__}")
    path = Path(folder) / WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"feature draft weights not found at {path}; train them with: "
                                f"python benchmarks/train_draft.py --kind feature")
    tensors = load_file(str(path))
    vocab_ids = tensors.pop("vocab_ids")
    head = head_from_tensors(tensors, target, vocab_ids)
    return FeatureDraft(head, vocab_ids, tokenizer, name=f"feature draft, {len(vocab_ids)}-token head")
