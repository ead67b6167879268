"""Speculative decoding: draft/verify with rejection sampling, drafters, statistics, and the trained draft model.

    from llmlab import attention, models, speculative
    target = attention.from_model(models.load()[0])
    result = speculative.generate(target, speculative.trained_draft(target), ids, 64, gamma=4)
    result.token_ids, result.alpha, result.tokens_per_pass
"""

from llmlab.speculative.decode import GREEDY, SpeculativeResult, Step, check_pair, generate, target_only, target_probs
from llmlab.speculative.draft_model import TASK_TYPES, editing_tasks, encode, load_draft, prompts, trained_draft
from llmlab.speculative.drafts import (
    Drafter,
    ModelDraft,
    NgramDraft,
    early_exit,
    full_vocab_logits,
    lookup,
    reduced_head,
)
from llmlab.speculative.feature_draft import FeatureDraft, FeatureHead, teacher_forced_top1, trained_feature_draft
from llmlab.speculative.lossless import Divergence, cast_weights, divergence, first_divergence, pass_shape_error
from llmlab.speculative.rejection import (
    acceptance_probability,
    acceptance_rate,
    best_gamma,
    break_even_alpha,
    expected_tokens_per_step,
    predicted_speedup,
    residual_distribution,
    verify,
    verify_greedy,
)

__all__ = [
                                       "GREEDY",
                                       "TASK_TYPES",
                                       "Divergence",
                                       "cast_weights",
                                       "divergence",
                                       "editing_tasks",
                                       "first_divergence",
                                       "pass_shape_error",
                                       "Drafter",
                                       "FeatureDraft",
                                       "FeatureHead",
                                       "trained_feature_draft",
                                       "teacher_forced_top1",
                                       "ModelDraft",
                                       "NgramDraft",
                                       "SpeculativeResult",
                                       "Step",
                                       "acceptance_probability",
                                       "acceptance_rate",
                                       "best_gamma",
                                       "break_even_alpha",
                                       "check_pair",
                                       "early_exit",
                                       "encode",
                                       "expected_tokens_per_step",
                                       "full_vocab_logits",
                                       "generate",
                                       "load_draft",
                                       "lookup",
                                       "predicted_speedup",
                                       "prompts",
                                       "reduced_head",
                                       "residual_distribution",
                                       "target_only",
                                       "target_probs",
                                       "trained_draft",
                                       "verify",
                                       "verify_greedy",
]
