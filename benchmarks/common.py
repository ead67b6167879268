"""Shared benchmark plumbing: timing, the machine header, and writing results/DATE-DEVICE-NAME.md.

Every benchmark script is cut into measure (returns data) / format (returns markdown) / write (this module).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any, Callable

import torch

from llmlab import results
from llmlab.serving.timing import time_calls, timed  # noqa: F401 - timed is re-exported to the scripts

RESULTS = results.RESULTS


def best_of(fn: Callable, repeats: int = 3) -> tuple[Any, float]:
    """Call fn() `repeats` times; return (the last result, the fastest wall seconds)."""
    t = time_calls(fn, repeats)
    return t.result, t.best


def device_label(device: torch.device | str | None = None) -> str:
    """A short name of the device measured on: 'cpu', 'cuda-NVIDIA-H100...' or 'mps'."""
    d = torch.device(device) if device is not None else torch.device("cpu")
    if d.type == "cuda" and torch.cuda.is_available():
        return "cuda-" + torch.cuda.get_device_name(d).replace(" ", "-")
    return d.type


def machine_header(device: torch.device | str | None = None) -> str:
    """One line naming the machine, device, torch threads and the load average when the run started."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{dt.date.today().isoformat()} · {platform.machine()}, {os.cpu_count()} CPUs, device "
            f"{device_label(device)}, torch {torch.__version__} with {torch.get_num_threads()} threads · "
            f"load average {load} (a busy machine makes every speed lower)")


def write_result(name: str, report: str, device: torch.device | str | None = None, data: dict | None = None) -> Path:
    """Write results/DATE-DEVICE-NAME.md (and .json when data is given) via llmlab.results; returns the .md."""
    return results.write_result(name, report, data=data, device=device_label(device), root=RESULTS)


def second_tier_fetched() -> bool:
    """Whether the opt-in tier is fetched and verified; if not, say how to fetch it (the bench stays green)."""
    from llmlab import models

    return models.second_tier_fetched()


def load_second_tier():
    """The opt-in tier's (model, tokenizer) on the CPU, or None after saying how to fetch it (bench stays green)."""
    from llmlab import models

    return models.load_second_tier()
