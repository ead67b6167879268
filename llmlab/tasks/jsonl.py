"""Reading JSON Lines files: the one owner of JSONL parsing in llmlab.

It lives in `llmlab.tasks` because every JSONL file the kit reads is a shipped task data file (llmlab/data/*.jsonl)
and the task modules are the data loaders; the CLI's Lit app and the benchmarks read the same files through it.
"""

from __future__ import annotations

import json
import os
from importlib.resources.abc import Traversable
from pathlib import Path


def read_jsonl(path: str | os.PathLike | Traversable) -> list:
    """The values of a JSON Lines file, one per non-blank line, in file order (read as UTF-8).

    path may be a str, a pathlib.Path or an importlib.resources file. A line that is not JSON raises ValueError
    naming the file and line number.
    """
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
    elif not isinstance(path, Traversable):
        raise TypeError(f"path must be a str, a Path or a resources file, got {type(path).__name__}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {number} must be one JSON value, got {line[:60]!r} ({exc.msg})") from None
    return rows
