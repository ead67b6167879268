"""llmlab: runnable, tested components for learning how LLMs work, driven by notebooks."""

import os

__version__ = "0.1.0"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if os.environ.get("LLMLAB_BLOCK_NETWORK") == "1":
    from llmlab.netguard import block_network

    block_network()
