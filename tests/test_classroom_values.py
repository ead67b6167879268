"""classroom/z2jh-values.yaml against the Zero to JupyterHub chart: merged over the chart's defaults as helm does and
validated with the chart's JSON schema, so `helm install` accepts it; its memory requests match the measured memory
per learner (benchmarks/results/*-cpu-classroom.md). The learner image (classroom/Dockerfile) is not built here.

The chart files come from ../shared/z2jh/ beside the repository (LLMLAB_Z2JH_CHART overrides the folder).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml

from llmlab.kit.classroom import helm_merge, z2jh_errors

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "classroom" / "z2jh-values.yaml"
CHART = Path(os.environ.get("LLMLAB_Z2JH_CHART", ROOT.parent / "shared" / "z2jh"))
needs_chart = pytest.mark.skipif(not (CHART / "values.schema.yaml").exists(),
                                 reason=f"Z2JH chart files not found in {CHART} (set LLMLAB_Z2JH_CHART)")


def values() -> dict:
    """The shipped values file, parsed."""
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def test_helm_merge_merges_maps_replaces_lists_and_scalars_and_null_deletes():
    defaults = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": "x", "drop": {"y": 1}, "table": {"t": 1}}
    before = copy.deepcopy(defaults)
    user = {"a": {"b": 2, "c": [3], "d": {"f": 2}}, "drop": None, "table": 5, "new": {"n": 1}}
    assert helm_merge(defaults, user) == {"a": {"b": 2, "c": [3], "d": {"e": 1, "f": 2}}, "keep": "x",
                                          "table": 5, "new": {"n": 1}}
    assert defaults == before  # inputs untouched
    assert helm_merge({"a": {"b": 1}}, {"a": {"b": None}}) == {"a": {}}


@needs_chart
def test_shipped_values_pass_the_chart_schema_after_the_merge():
    assert z2jh_errors({}, CHART) == []  # the chart's own defaults are valid: the validator reads the schema right
    assert z2jh_errors(values(), CHART) == []


@needs_chart
@pytest.mark.parametrize("path, wrong, where", [
    (("cull", "timeout"), "an hour", "cull.timeout"),                       # a string where seconds are asked
    (("singleuser", "cpu", "limit"), "2", "singleuser.cpu.limit"),         # a quoted number
    (("singleuser", "image", "tag"), 2026.11, "singleuser.image.tag"),     # an unquoted tag YAML reads as a float
    (("singleuser", "memory", "guarantees"), "1G", "singleuser.memory"),   # a misspelt key
    (("cull", "enabled"), "yes", "cull.enabled"),                           # a string where a boolean is asked
])
def test_a_wrong_value_in_a_copy_of_the_values_is_rejected_at_its_path(path, wrong, where):
    broken = values()
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = wrong
    errors = z2jh_errors(broken, CHART)
    assert errors and all(e.startswith(where) for e in errors), errors


def quantity_mb(text: str) -> float:
    """A Kubernetes memory quantity ('1G', '512Mi', '3G') in MB of 2**20 bytes, the unit the benchmark reports."""
    number, unit = re.fullmatch(r"([0-9.]+)([KMGT]i?)", str(text)).groups()
    power = {"K": 1, "M": 2, "G": 3, "T": 4}[unit[0]]
    return float(number) * (1024 if unit.endswith("i") else 1000) ** power / 2**20


def measured_memory_mb() -> tuple[float, float]:
    """(a lone learner's kernel RSS + server PSS, the private MB of one more learner at the largest class) from the
    newest benchmarks/results/*-cpu-classroom.md."""
    newest = sorted((ROOT / "benchmarks" / "results").glob("*-cpu-classroom.md"))[-1]
    rows = [[c.strip() for c in line.strip("|").split("|")]
            for line in newest.read_text(encoding="utf-8").splitlines() if re.match(r"\| \d+ \|", line)]
    alone = next(r for r in rows if r[0] == "1")
    largest = max(rows, key=lambda r: int(r[0]))
    return float(alone[1]) + float(alone[4]), float(largest[3]) + float(largest[5])


def test_memory_requests_cover_the_measured_memory_per_learner():
    alone_mb, marginal_mb = measured_memory_mb()
    assert 900 < alone_mb < 1500 and 300 < marginal_mb < alone_mb  # the table was parsed, not a stray column
    memory = values()["singleuser"]["memory"]
    guarantee, limit = quantity_mb(memory["guarantee"]), quantity_mb(memory["limit"])
    assert marginal_mb <= guarantee <= limit
    assert limit >= alone_mb, f"limit {limit:.0f} MB < {alone_mb:.0f} MB a lone learner uses"
    assert quantity_mb("1Gi") == 1024 and quantity_mb("1G") == pytest.approx(953.7, abs=0.1)


def test_kernels_get_one_thread_per_kernel_in_the_values():
    env = values()["singleuser"]["extraEnv"]
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
