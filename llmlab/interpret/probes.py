"""Linear probes and multi-task heads on cached hidden states.

The idea of LLMs in Production's listing 12.4: run the model once, keep its hidden states, and serve several small
task heads from them instead of one full forward pass per task. Probing every layer shows where a property
(sentiment, topic, language) becomes linearly readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from llmlab import tokens, validate
from llmlab.interpret.lens import residual_stream
from llmlab.serving.timing import time_calls

POOLS = ("mean", "last")


@torch.inference_mode()
def hidden_features(model, tokenizer, texts: Sequence[str], pool: str = "mean", batch_size: int = 16
                    ) -> torch.Tensor:
    """Pooled residual stream of every text at every layer: (layers + 1, n, hidden), float32 on the CPU."""
    validate.non_empty("texts", texts)
    validate.one_of("pool", pool, POOLS)
    validate.integer("batch_size", batch_size, 1)
    for i, t in enumerate(texts):
        validate.text(f"texts[{i}]", t)
    pad = tokens.pad_token_id(tokenizer)
    out = []
    for start in range(0, len(texts), batch_size):
        encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts[start:start + batch_size]]
        width = max(len(e) for e in encoded)
        ids = torch.tensor([e + [pad] * (width - len(e)) for e in encoded])          # right-padded
        mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
        stream = residual_stream(model, ids, mask.to(model.device)).float().cpu()  # (L + 1, b, seq, hidden)
        if pool == "mean":
            m = mask[None, :, :, None].float()
            out.append((stream * m).sum(2) / m.sum(2))
        else:
            last = mask.sum(1) - 1
            out.append(stream[:, torch.arange(len(encoded)), last])
    return torch.cat(out, dim=1)


@dataclass
class LinearProbe:
    """Multinomial logistic regression on standardised features: softmax(((x - mean) / std) W^T + b)."""

    mean: torch.Tensor          # (hidden,)
    std: torch.Tensor           # (hidden,)
    linear: torch.nn.Linear     # hidden -> classes

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (n, classes) for features x (n, hidden)."""
        validate.float_tensor("x", x, dims=2)
        return self.linear((x - self.mean) / self.std)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class (n,) for features x (n, hidden)."""
        with torch.no_grad():
            return self.logits(x).argmax(-1)


def train_probe(x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, steps: int = 100,
                lr: float = 0.05, weight_decay: float = 1e-2, seed: int = 0) -> LinearProbe:
    """Fit a linear probe on training features x (n, hidden) and labels y (n,) with full-batch Adam."""
    validate.float_tensor("x", x, dims=2)
    validate.tensor("y", y, dims=1)
    validate.same_length(("x", "y"), x, y)
    validate.integer("steps", steps, 1)
    num_classes = num_classes if num_classes is not None else int(y.max()) + 1
    validate.integer("num_classes", num_classes, 2)
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6                       # from the training features only
    probe = LinearProbe(mean=mean, std=std, linear=torch.nn.Linear(x.shape[1], num_classes))
    opt = torch.optim.Adam(probe.linear.parameters(), lr=lr, weight_decay=weight_decay)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # matrices this small: extra threads only spin (100x slower on a busy CPU)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(probe.logits(x), y).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return probe


def accuracy(probe: LinearProbe, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of x (n, hidden) whose predicted class equals y (n,)."""
    validate.same_length(("x", "y"), x, y)
    validate.non_empty("y", y)
    return int((probe.predict(x) == y).sum()) / len(y)      # exact: 18 of 20 is 0.9, not float32's 0.8999999761


def probe_accuracy_by_layer(features: torch.Tensor, labels: Sequence[int], train: Sequence[int],
                            test: Sequence[int], **train_kw) -> torch.Tensor:
    """Held-out accuracy (layers + 1,) of a probe trained at each layer of features (layers + 1, n, hidden)."""
    validate.float_tensor("features", features, dims=3)
    validate.non_empty("train", train)
    validate.non_empty("test", test)
    if set(train) & set(test):
        raise ValueError(f"train and test must not share rows, got {len(set(train) & set(test))} in both")
    y = torch.as_tensor(labels)
    validate.same_length(("features[0]", "labels"), features[0], y)
    tr, te = torch.as_tensor(train), torch.as_tensor(test)
    classes = int(y.max()) + 1
    return torch.tensor([accuracy(train_probe(f[tr], y[tr], classes, **train_kw), f[te], y[te]) for f in features])


@dataclass
class MultiTaskHeads:
    """Several task heads reading one cached layer: one forward pass serves every task."""

    layer: int
    heads: dict[str, LinearProbe]
    classes: dict[str, list[str]]

    def predict(self, features: torch.Tensor) -> dict[str, list[str]]:
        """Every task's predicted class names for cached features (layers + 1, n, hidden)."""
        validate.float_tensor("features", features, dims=3)
        x = features[self.layer]
        return {task: [self.classes[task][int(i)] for i in head.predict(x)] for task, head in self.heads.items()}


def time_shared_vs_separate(model, tokenizer, texts: Sequence[str], heads: MultiTaskHeads, repeats: int = 1
                            ) -> dict[str, float]:
    """Seconds to serve every task from one cached forward pass vs one full forward pass per task (best of repeats)."""
    validate.integer("repeats", repeats, 1)

    def shared() -> None:
        heads.predict(hidden_features(model, tokenizer, texts))

    def separate() -> None:
        for task in heads.heads:
            MultiTaskHeads(heads.layer, {task: heads.heads[task]}, heads.classes).predict(
                hidden_features(model, tokenizer, texts))

    result = {}
    for name, fn in [("shared", shared), ("separate", separate)]:
        result[name] = time_calls(fn, repeats).best
    result["saved"] = result["separate"] - result["shared"]
    return result
