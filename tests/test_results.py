"""Recorded runs as data: write_result writes the .md and .json pair, latest_result reads the newest by name."""

import json

import pytest

from llmlab import results


def test_write_then_latest_reads_data_and_report(tmp_path):
    md = results.write_result("demo", "# demo\n", data={"x": 1.5}, root=tmp_path)
    assert md.suffix == ".md" and md.with_suffix(".json").exists()
    run = results.latest_result("demo", root=tmp_path)
    assert run["x"] == 1.5 and run.report == "# demo\n" and run.device == "cpu" and run.name == "demo"


def test_latest_picks_newest_date_and_exact_name(tmp_path):
    for stem, v in [("2026-01-02-cpu-demo", 1), ("2026-03-01-cpu-demo", 2), ("2026-05-01-cpu-demo-extra", 3),
                    ("2026-06-01-cpu-xdemo", 4), ("2026-07-01-cuda-X-demo", 5)]:
        (tmp_path / f"{stem}.json").write_text(json.dumps({"v": v}), encoding="utf-8")
    run = results.latest_result("demo", root=tmp_path)
    assert run["v"] == 2 and run.date == "2026-03-01" and run.report == ""
    assert results.latest_result("demo", device="cuda-X", root=tmp_path)["v"] == 5


def test_missing_run_and_bad_arguments_say_what(tmp_path):
    with pytest.raises(FileNotFoundError, match="'nothing'"):
        results.latest_result("nothing", root=tmp_path)
    with pytest.raises(TypeError, match="name must be a str"):
        results.latest_result(3, root=tmp_path)
    with pytest.raises(TypeError, match="data must be a dict"):
        results.write_result("demo", "x", data=[1], root=tmp_path)


def test_every_shipped_json_is_readable_as_latest():
    for path in results.RESULTS.glob("*.json"):
        stem = path.stem
        device_and_name = stem[len("YYYY-MM-DD-"):]
        device = "cpu" if device_and_name.startswith("cpu-") else None
        if device:
            run = results.latest_result(device_and_name[len("cpu-"):], root=results.RESULTS)
            assert isinstance(run.data, dict) and run.date >= stem[:10]


def test_jsonable_turns_run_objects_into_plain_json():
    import argparse
    import dataclasses
    from pathlib import Path

    import numpy as np
    import torch

    @dataclasses.dataclass
    class Point:
        x: float
        tags: tuple

    value = {"p": Point(1.5, ("a",)), ("k", 1): np.float32(2.0), "t": torch.tensor([1, 2]),
             "ns": argparse.Namespace(n=3, out=Path("x")), "dev": torch.device("cpu"), "nan": float("nan")}
    out = results.jsonable(value)
    assert out["p"] == {"x": 1.5, "tags": ["a"]} and out["('k', 1)"] == 2.0 and out["t"] == [1, 2]
    assert out["ns"] == {"n": 3, "out": "x"} and out["dev"] == "cpu" and out["nan"] != out["nan"]
    json.dumps(out)  # plain types only


def test_every_shipped_report_has_its_json_beside_it():
    reports = sorted(results.RESULTS.glob("*.md"))
    assert reports, "no shipped reports found"
    missing = [p.name for p in reports if not p.with_suffix(".json").exists()]
    assert not missing, f"reports without their .json: {missing}"


def test_backfill_parses_header_and_tables_and_says_so(tmp_path):
    import sys

    sys.path.insert(0, str(results.RESULTS.parent))
    import backfill_json

    (tmp_path / "2026-01-01-cpu-demo.md").write_text(
        "# Demo\n\n2026-01-01 · x86_64, load average 1.0\n\n## Part A\n\n| a | b |\n|---|---|\n| 1 | x y |\n"
        "| 2 | z |\n\ntext\n", encoding="utf-8")
    backfill_json.main(tmp_path)
    run = results.latest_result("demo", root=tmp_path)
    assert run["header"] == "2026-01-01 · x86_64, load average 1.0" and run["title"] == "Demo"
    assert run["tables"] == [{"section": "Part A", "columns": ["a", "b"], "rows": [["1", "x y"], ["2", "z"]]}]
    assert "parsed from the .md" in run["source"]
