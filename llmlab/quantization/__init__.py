"""Quantization, one concern per module: number formats, tensor quantizers, NF4, LLM.int8(), quantized modules,
library backends (bitsandbytes, GGUF) and the chapter 04 comparison of variants.

`from llmlab import quantization as Q; Q.absmax_quantize(...)` works for every public name below.
"""

from llmlab.quantization.backends import bnb_status, gguf_state_dict, load_bnb, load_gguf, max_weight_difference
from llmlab.quantization.formats import (
                                         BOOK_VALUES,
                                         FLOAT_FORMATS,
                                         FORMATS,
                                         INT_FORMATS,
                                         ROUNDING_MODES,
                                         FloatFormat,
                                         bit_fields,
                                         book_table,
                                         format_info,
                                         round_to_format,
)
from llmlab.quantization.llm_int8 import int8_matmul, llm_int8_matmul
from llmlab.quantization.modules import SCHEMES, QuantizedLinear, memory_footprint, quantize_model
from llmlab.quantization.nf4 import (
                                         NF4_CODEBOOK,
                                         double_dequantize,
                                         double_quantize,
                                         nf4_codebook,
                                         nf4_dequantize,
                                         nf4_nearest,
                                         nf4_quantize,
)
from llmlab.quantization.tensor import (
                                         GRANULARITIES,
                                         absmax_quantize,
                                         dequantize,
                                         minmax_quantize,
                                         pack_int4,
                                         quantize_dequantize,
                                         unpack_int4,
                                         zeropoint_quantize,
)
from llmlab.quantization.variants import (
                                         OWN_ROWS,
                                         ROW_NAMES,
                                         SAMPLE_PROMPT,
                                         Fidelity,
                                         Row,
                                         build_variant,
                                         eval_text,
                                         fidelity_table,
                                         measure_row,
                                         measure_table,
)
