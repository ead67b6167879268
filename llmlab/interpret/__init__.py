"""Interpretability views on a transformers Llama-style model: logit lens, attention maps and head ablation,
saliency (gradient x input, integrated gradients), counterfactual edits, linear probes on cached hidden states.

One module per view: lens, heads, saliency, probes. The LIT wrappers live in llmlab.kit.lit_app.
"""

from llmlab.interpret.heads import (
    HeadEffects,
    ablate_heads,
    attention_maps,
    head_ablation_effects,
    next_token_probability,
)
from llmlab.interpret.lens import (
    LensResult,
    layer_logits,
    lens_logits,
    lens_matches_model,
    logit_lens,
    residual_stream,
    target_token_id,
)
from llmlab.interpret.probes import (
    LinearProbe,
    MultiTaskHeads,
    accuracy,
    hidden_features,
    probe_accuracy_by_layer,
    time_shared_vs_separate,
    train_probe,
)
from llmlab.interpret.saliency import (
    Counterfactual,
    Saliency,
    continuation_logprob,
    drop_each_token,
    edit_token,
    gradient,
    gradient_x_input,
    integrated_gradients,
    prompt_and_target,
    sequence_score,
    token_saliency,
)

__all__ = [
    "HeadEffects", "ablate_heads", "attention_maps", "head_ablation_effects", "next_token_probability",
    "LensResult", "layer_logits", "lens_logits", "lens_matches_model", "logit_lens", "residual_stream",
    "target_token_id", "LinearProbe", "MultiTaskHeads", "accuracy", "hidden_features", "probe_accuracy_by_layer",
    "time_shared_vs_separate", "train_probe", "Counterfactual", "Saliency", "continuation_logprob",
    "drop_each_token", "edit_token", "gradient", "gradient_x_input", "integrated_gradients", "prompt_and_target",
    "sequence_score", "token_saliency",
]
