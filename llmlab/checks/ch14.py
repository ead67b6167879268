"""Checks for chapter 14 exercises."""

from __future__ import annotations

from llmlab.checks import Check  # noqa: F401 - used by the checks below

# ------ first part's checks go here (14.1-14.2: FLOPs, scaling-law fit)


# ------ second part's checks go here (14.3-14.5: router, window mask, RoPE scaling)
