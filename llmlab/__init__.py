"""llmlab: runnable, tested components for learning how LLMs work, driven by notebooks."""

# Standard library only at import time: `python3.11 -m llmlab setup` imports this before .venv exists.

import logging
import os

__version__ = "0.1.0"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# bitsandbytes warns at import that it could not fetch an optional CPU kernel from the Hub ("Failed to load CPU
# gemm_4bit_forward from kernels-community"); this offline kit never fetches it, so the line is only noise
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

if os.environ.get("LLMLAB_BLOCK_NETWORK") == "1":
    from llmlab.kit.netguard import block_network

    block_network()
