"""Checks for chapter 13 exercises."""

from __future__ import annotations

from llmlab.checks import Check  # noqa: F401 - used by the checks below

# ------ first part's checks go here (13.1-13.2: AUROC, SelfCheck)


# ------ second part's checks go here (13.3-13.5: PII, semantic cache, gateway)
