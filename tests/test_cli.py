"""The python -m llmlab command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmlab import cli, exercises


def test_doctor_reports_ok_and_fail_lines(capsys, monkeypatch):
    monkeypatch.setattr(cli, "doctor_lines", lambda: [(True, "fine"), (False, "broken")])
    assert cli.main(["doctor"]) == 1
    assert capsys.readouterr().out == "[OK] fine\n[FAIL] broken\n"
    monkeypatch.setattr(cli, "doctor_lines", lambda: [(True, "fine")])
    assert cli.main(["doctor"]) == 0


def test_doctor_lines_cover_python_packages_device_cache_and_widgets():
    text = "\n".join(line for _, line in cli.doctor_lines())
    for needle in ["Python 3.", "torch ", "transformers ", "bitsandbytes ", "dspy ", "lit-nlp ", "device: ",
                   "model cache: ", "JupyterLab widget extension"]:
        assert needle in text


def test_pinned_versions_reads_exact_pins(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("# comment\ntorch==2.13.0\nLit_NLP==1.3.1  # pinned\nnumpy<2\n")
    assert cli.pinned_versions(path) == {"torch": "2.13.0", "lit-nlp": "1.3.1"}


def test_build_exercises_check_passes_on_this_repository(capsys):
    assert cli.main(["build-exercises", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_start_unknown_chapter_fails_with_the_list(capsys):
    assert cli.main(["start", "99"]) == 2
    err = capsys.readouterr().err
    assert "chapter must be one of" in err and "'00'" in err


def test_start_never_overwrites_workspace(tmp_path, monkeypatch, capsys):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "00_tour_exercises.ipynb").write_text("fresh")
    (tmp_path / "workspace").mkdir()
    mine = tmp_path / "workspace" / "00_tour_exercises.ipynb"
    mine.write_text("learner's work")
    monkeypatch.setattr(exercises, "project_root", lambda: tmp_path)
    assert cli.main(["start", "00"]) == 0
    assert "left untouched" in capsys.readouterr().out
    assert mine.read_text() == "learner's work"


def test_bench_with_unknown_name_lists_benchmarks(capsys):
    assert cli.main(["bench", "no-such-benchmark"]) == 2
    assert "name must match one of" in capsys.readouterr().err


def test_unknown_model_for_fetch_is_a_clear_failure(capsys):
    assert cli.main(["fetch", "--model", "gpt-9"]) == 1
    assert "name must be one of" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "llmlab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ["doctor", "fetch", "build-exercises", "start", "bench"]:
        assert command in out.stdout


def test_missing_command_is_an_error():
    with pytest.raises(SystemExit):
        cli.main([])
