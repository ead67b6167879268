"""Suite-wide settings: offline, network guard, and a per-notebook time summary."""

from __future__ import annotations

import os
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from llmlab.kit.netguard import block_network  # noqa: E402

block_network()

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    """Add up the time of every executed notebook cell, per notebook."""
    path = str(report.fspath)
    if path.endswith(".ipynb"):
        _notebook_seconds[os.path.relpath(path)] += report.duration


def pytest_terminal_summary(terminalreporter):
    """Print how long each notebook took (the budget is 3 minutes each)."""
    if _notebook_seconds:
        terminalreporter.section("notebook run times")
        for path, seconds in sorted(_notebook_seconds.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
        terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  all notebooks")
