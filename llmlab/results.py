"""Recorded benchmark runs as data: benchmarks/results/DATE-DEVICE-NAME.md with its .json, and the latest by name."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmlab import validate

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


@dataclass(frozen=True)
class Recorded:
    """One recorded run: its name, date, device, data (the .json) and report (the .md, or '' if none)."""

    name: str
    date: str
    device: str
    data: dict
    report: str
    path: Path

    def __getitem__(self, key: str) -> Any:
        """The recorded value under `key` (so `run["header"]` reads like the JSON it came from)."""
        return self.data[key]


def jsonable(value: Any) -> Any:
    """`value` as plain JSON types: dataclasses and namespaces become dicts, tensors and arrays lists, the rest str."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {k if isinstance(k, (str, int, float, bool)) else str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, argparse.Namespace):
        return jsonable(vars(value))
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and numpy scalars
        return jsonable(value.tolist())
    return str(value)


def result_stem(name: str, device: str = "cpu", date: str | None = None) -> str:
    """The file stem DATE-DEVICE-NAME for a run of `name` on `device` (today when no date is given)."""
    return f"{date or dt.date.today().isoformat()}-{device}-{name}"


def write_result(name: str, report: str, data: dict | None = None, device: str = "cpu",
                 root: Path = RESULTS) -> Path:
    """Write the report to root/DATE-DEVICE-NAME.md and, when given, the data beside it as .json; returns the .md."""
    validate.text("name", name)
    validate.text("report", report, allow_empty=True)
    root.mkdir(parents=True, exist_ok=True)
    out = root / f"{result_stem(name, device)}.md"
    out.write_text(report.rstrip() + "\n", encoding="utf-8")
    if data is not None:
        if not isinstance(data, dict):
            raise TypeError(f"data must be a dict of JSON-able values, got {type(data).__name__}")
        out.with_suffix(".json").write_text(json.dumps(jsonable(data), indent=1) + "\n", encoding="utf-8")
    return out


def recorded_runs(name: str, device: str = "cpu", root: Path = RESULTS) -> list[Path]:
    """The .json files recorded for `name` on `device`, oldest first (dates sort as text)."""
    validate.text("name", name)
    stamp = len("YYYY-MM-DD-")
    return sorted(p for p in root.glob(f"*-{device}-{name}.json") if p.stem[stamp:] == f"{device}-{name}")


def latest_result(name: str, device: str = "cpu", root: Path = RESULTS) -> Recorded:
    """The newest recorded run of `name` on `device`; FileNotFoundError says which script records it."""
    runs = recorded_runs(name, device, root)
    if not runs:
        raise FileNotFoundError(f"no recorded run named {name!r} on {device!r} in {root}: record one with "
                                f"the benchmarks/ script that writes it (python -m llmlab bench runs them all)")
    path = runs[-1]
    md = path.with_suffix(".md")
    return Recorded(name=name, date=path.stem[:10], device=device,
                    data=json.loads(path.read_text(encoding="utf-8")),
                    report=md.read_text(encoding="utf-8") if md.exists() else "", path=path)
