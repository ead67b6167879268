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
