"""LoRA and QLoRA, one concern per module: layers (LoRALinear, injection, merging into weights, parameter counts),
rank analysis, merging adapters and models, and QLoRA's 4-bit base.

training holds the task-neutral loop (`train_adapter`, `collate`, `answer_loss`) and the peft config of the kit's
finetunes (`lora_config`); the chapter 05 order→JSON task lives in `llmlab.tasks.orders`, the memory arithmetic in
`llmlab.memory`.
"""

from llmlab.lora.layers import (
                                LoRALinear,
                                copy_lora_into_peft,
                                count_parameters,
                                inject_lora,
                                linear_module_names,
                                lora_layers,
                                lora_param_count,
                                merge_lora,
                                multi_tenant_params,
                                unmerge_lora,
                                validate_lora_args,
)
from llmlab.lora.merging import concat_lora, dare, elect_sign, slerp, task_arithmetic, ties_merge, trim_top_k
from llmlab.lora.qlora import load_nf4_base, nf4_config, qlora_model
from llmlab.lora.rank import low_rank_approximation, one_matrix_update, relative_reconstruction_error
from llmlab.lora.training import TARGET_MODULES, TrainLog, answer_loss, collate, lora_config, train_adapter
