"""The python -m llmlab command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab import models
from llmlab.kit import cli, exercises, launch


def test_doctor_reports_ok_and_fail_lines(capsys, monkeypatch):
    monkeypatch.setattr(cli, "doctor_lines", lambda: [(True, "fine"), (False, "broken")])
    assert cli.main(["doctor"]) == 1
    assert capsys.readouterr().out == "[OK] fine\n[FAIL] broken\n"
    monkeypatch.setattr(cli, "doctor_lines", lambda: [(True, "fine")])
    assert cli.main(["doctor"]) == 0


def test_doctor_lines_cover_python_packages_device_cache_and_widgets():
    text = "\n".join(line for _, line in cli.doctor_lines())
    for needle in ["platform: ", "Python 3.", "torch ", "transformers ", "bitsandbytes ", "dspy ", "lit-nlp ",
                   "device: ", "Apple MPS available: ", "model cache: ", "JupyterLab widget extension"]:
        assert needle in text


def test_pinned_versions_reads_exact_pins(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("# comment\ntorch==2.13.0\nLit_NLP==1.3.1  # pinned\nnumpy<2\n", encoding="utf-8")
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
    (tmp_path / "exercises" / "00_tour_exercises.ipynb").write_text("fresh", encoding="utf-8")
    (tmp_path / "workspace").mkdir()
    mine = tmp_path / "workspace" / "00_tour_exercises.ipynb"
    mine.write_text("learner's work", encoding="utf-8")
    monkeypatch.setattr(exercises, "project_root", lambda: tmp_path)
    assert cli.main(["start", "00"]) == 0
    assert "left untouched" in capsys.readouterr().out
    assert mine.read_text(encoding="utf-8") == "learner's work"


def test_bench_with_unknown_name_lists_benchmarks(capsys):
    assert cli.main(["bench", "no-such-benchmark"]) == 2
    assert "name must match one of" in capsys.readouterr().err


def test_unknown_model_for_fetch_is_a_clear_failure(capsys):
    assert cli.main(["fetch", "--model", "gpt-9"]) == 1
    assert "name must be one of" in capsys.readouterr().err


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "llmlab", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ["setup", "lab", "test", "doctor", "fetch", "build-exercises", "start", "bench"]:
        assert command in out.stdout


def test_missing_command_is_an_error():
    with pytest.raises(SystemExit):
        cli.main([])


# python -m llmlab setup | lab | test (llmlab/kit/launch.py), with the commands recorded instead of run

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Stands in for launch.execute: records (command, environment, output) and answers with exit codes."""

    def __init__(self, fail: str | None = None):
        self.calls: list[tuple[list[str], dict[str, str], str]] = []
        self.fail = fail

    def __call__(self, cmd: list[str], env: dict[str, str], root: Path, output: str) -> int:
        self.calls.append((cmd, env, output))
        return 1 if self.fail is not None and self.fail in cmd else 0

    @property
    def commands(self) -> list[list[str]]:
        return [cmd for cmd, _, _ in self.calls]


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout (constraints.txt, pyproject.toml) whose .venv has a Python but no stamp yet."""
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'llmlab'\n", encoding="utf-8")
    python = launch.venv_python(tmp_path / launch.VENV)
    python.parent.mkdir(parents=True)
    python.write_text("", encoding="utf-8")
    monkeypatch.setattr(launch, "project_root", lambda: tmp_path)
    return tmp_path


def stamp(root: Path, text: str | None = None) -> Path:
    """Write .venv's stamp (the current digest unless text is given)."""
    path = root / launch.VENV / launch.STAMP
    path.write_text(launch.stamp_digest(root) if text is None else text, encoding="utf-8")
    return path


def test_setup_does_nothing_when_the_stamp_is_current(checkout, capsys):
    stamp(checkout)
    run = Recorder()
    assert launch.setup(launch.parse(["setup", "--no-fetch"]), fetch=False, run=run) == 0
    assert run.calls == []
    assert "up to date" in capsys.readouterr().out


def test_setup_installs_when_constraints_change_then_a_second_run_does_nothing(checkout):
    stamp(checkout)
    (checkout / "constraints.txt").write_text("torch==2.13.0\nnumpy==1.26.4\n", encoding="utf-8")
    assert not launch.is_current(checkout, checkout / launch.VENV)
    run = Recorder()
    assert launch.setup(launch.parse(["setup", "--no-fetch"]), fetch=False, run=run) == 0
    py = str(launch.venv_python(checkout / launch.VENV))
    assert run.commands == [[py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                            [py, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"],
                            launch.announcements_command(py)]
    assert [output for _, _, output in run.calls] == ["show", "pip", "quiet"]
    assert launch.is_current(checkout, checkout / launch.VENV)
    again = Recorder()
    assert launch.setup(launch.parse(["setup", "--no-fetch"]), fetch=False, run=again) == 0
    assert again.calls == []


def test_first_setup_creates_the_venv_with_this_python_and_a_failed_install_writes_no_stamp(checkout):
    launch.venv_python(checkout / launch.VENV).unlink()
    run = Recorder(fail="pip")
    assert launch.setup(launch.parse(["setup"]), run=run) == 1
    assert run.commands[0] == [sys.executable, "-m", "venv", str(checkout / launch.VENV)]
    assert len(run.commands) == 2  # stopped at the failed pip upgrade: no install, no fetch
    assert not (checkout / launch.VENV / launch.STAMP).exists()


def test_setup_refuses_to_create_a_venv_with_another_python(checkout, monkeypatch, capsys):
    launch.venv_python(checkout / launch.VENV).unlink()
    monkeypatch.setattr(launch, "NEEDS_PYTHON", (2, 7))
    run = Recorder()
    assert launch.setup(launch.parse(["setup"]), run=run) == 1
    assert run.calls == []
    assert "llmlab needs Python 2.7" in capsys.readouterr().err


def test_an_empty_stamp_from_the_old_makefile_counts_when_newer_than_its_inputs(checkout):
    path = stamp(checkout, "")
    newest = max((checkout / name).stat().st_mtime for name in launch.STAMP_INPUTS)
    os.utime(path, (newest + 10, newest + 10))
    assert launch.is_current(checkout, checkout / launch.VENV)
    os.utime(path, (newest - 10, newest - 10))
    assert not launch.is_current(checkout, checkout / launch.VENV)


def test_setup_fetches_with_the_hub_reachable_and_dry_run_runs_nothing(checkout, capsys):
    stamp(checkout, "an old digest")
    run = Recorder()
    assert launch.setup(launch.parse(["setup", "--dry-run"]), run=run) == 0
    assert run.calls == []
    out = capsys.readouterr().out
    assert "pip install --quiet -c constraints.txt -e '.[dev]'" in out and "-m llmlab fetch" in out
    assert (checkout / launch.VENV / launch.STAMP).read_text(encoding="utf-8") == "an old digest"
    stamp(checkout)
    assert launch.setup(launch.parse(["setup"]), run=run) == 0
    [(cmd, env, _)] = run.calls
    assert cmd[1:] == ["-m", "llmlab", "fetch"] and env["HF_HUB_OFFLINE"] == "0"


def test_test_runs_the_makefiles_old_steps_with_the_same_pytest_arguments(checkout, monkeypatch):
    monkeypatch.delenv("LLMLAB_BLOCK_NETWORK", raising=False)
    stamp(checkout)
    run = Recorder()
    assert launch.test(launch.parse(["test", "-x", "--", "-k", "not slow"]), run=run) == 0
    py = str(launch.venv_python(checkout / launch.VENV))
    assert run.commands == [
        [py, "-m", "llmlab", "fetch"],
        [py, "-m", "llmlab", "fetch", models.SECOND_TIER],
        [py, "-m", "llmlab", "build-exercises", "--check"],
        [py, "-m", "ruff", "check", "."],
        [py, "-m", "pytest", "tests", "notebooks", "solutions", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-x", "-k", "not slow"]]
    envs = [env for _, env, _ in run.calls]
    assert envs[-1]["LLMLAB_BLOCK_NETWORK"] == "1" and envs[2].get("LLMLAB_BLOCK_NETWORK") != "1"
    assert envs[1]["HF_HUB_OFFLINE"] == "0" and launch.SECOND_TIER == models.SECOND_TIER
    assert all(env[name] == value for env in envs[2:] for name, value in launch.OFFLINE_ENV.items())


def test_test_goes_on_when_the_opt_in_tier_cannot_be_fetched(checkout, capsys):
    stamp(checkout)
    run = Recorder(fail=launch.SECOND_TIER)  # only the tier's fetch names it
    assert launch.test(launch.parse(["test"]), run=run) == 0
    assert run.commands[-1][1:3] == ["-m", "pytest"]
    assert "could not be fetched: its live notebook cells will say so and skip" in capsys.readouterr().out


def test_test_stops_at_the_first_failing_step(checkout):
    stamp(checkout)
    run = Recorder(fail="build-exercises")
    assert launch.test(launch.parse(["test"]), run=run) == 1
    assert not any("pytest" in cmd for cmd in run.commands)


def test_lab_runs_doctor_then_jupyter_lab_on_notebook_00(checkout, monkeypatch):
    stamp(checkout)
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000, raising=False)
    run = Recorder(fail="doctor")  # a FAIL line from the doctor does not stop the lab
    assert launch.lab(launch.parse(["lab", "--no-browser", "--port", "8890"]), run=run) == 0
    py = str(launch.venv_python(checkout / launch.VENV))
    assert run.commands[1:] == [
        [py, "-m", "llmlab", "doctor"],
        [py, "-m", "jupyter", "lab", f"--ServerApp.root_dir={checkout}", "notebooks/00_setup_and_tour.ipynb",
         "--no-browser", "--port", "8890"]]
    monkeypatch.setattr(launch.os, "geteuid", lambda: 0, raising=False)
    assert "--allow-root" in launch.lab_command(py, checkout, [])


def test_no_venv_uses_this_python_and_installs_nothing(checkout):
    run = Recorder()
    assert launch.test(launch.parse(["test", "--no-venv"]), run=run) == 0
    assert {cmd[0] for cmd in run.commands} == {sys.executable}
    assert not any("pip" in cmd for cmd in run.commands)


def test_setup_rejects_unknown_arguments_and_lab_passes_them_on():
    with pytest.raises(SystemExit):
        launch.parse(["setup", "--no-browser"])
    assert launch.parse(["lab", "--no-browser"]).extra == ["--no-browser"]
    assert launch.parse(["test", "--", "--dry-run"]).extra == ["--dry-run"]
    assert launch.parse(["test", "--", "--dry-run"]).dry_run is False


def test_setup_lab_and_test_need_only_the_standard_library():
    code = ("import runpy, sys\n"
            "for command in ('setup', 'test', 'lab'):\n"
            "    sys.argv = ['llmlab', command, '--dry-run']\n"
            "    try:\n"
            "        runpy.run_module('llmlab', run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as exc:\n"
            "        assert not exc.code, exc.code\n"
            "known = set(sys.stdlib_module_names) | {'llmlab', '__main__'}\n"
            "other = sorted({m.split('.')[0] for m in sys.modules} - known)\n"
            "print('NON-STDLIB', other)\n")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True,
                         encoding="utf-8", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "NON-STDLIB []" in out.stdout
    assert "-m pytest tests notebooks solutions" in out.stdout and "-m jupyter lab" in out.stdout


def test_other_commands_without_the_packages_say_to_run_setup_first():
    out = subprocess.run([sys.executable, "-S", "-m", "llmlab", "doctor"], cwd=ROOT, capture_output=True, text=True,
                         encoding="utf-8", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1
    assert "this Python lacks" in out.stderr and "-m llmlab setup" in out.stderr


def test_makefile_targets_call_the_entry_points():
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, encoding="utf-8",
                              check=True).stdout
    assert "-m llmlab test -- -x -k 'a b'" in dry("test", "PYTEST_ARGS=-x -k 'a b'")
    assert "-m llmlab lab -- --no-browser" in dry("lab", "LAB_ARGS=--no-browser")
    assert "-m llmlab setup --no-fetch" in dry("setup")
    assert "-m llmlab setup\n" in dry("fetch")


def test_makefile_exports_the_same_offline_settings_as_the_entry_points():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    exported = dict(re.findall(r"^export (\w+) := (\S+)$", text, flags=re.M))
    assert exported == launch.OFFLINE_ENV


def test_environment_yml_and_postbuild_install_and_fetch_as_setup_does():
    env = (ROOT / "environment.yml").read_text(encoding="utf-8")
    pip_args = [word for line in re.findall(r"^\s+- (-[ce] \S+)$", env, flags=re.M) for word in line.split()]
    assert pip_args == launch.install_commands("python", Path(".venv"), create=False)[-1][-4:]
    assert f"python={'.'.join(map(str, launch.NEEDS_PYTHON))}" in env
    post_build = (ROOT / "postBuild").read_text(encoding="utf-8")
    assert "python -m llmlab fetch" in post_build and launch.ANNOUNCEMENTS in post_build


def test_bench_exact_name_runs_only_that_script(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd[-1]) or 0)
    assert cli.main(["bench", "classroom"]) == 0
    assert [c.rsplit("/", 1)[-1] for c in calls] == ["bench_classroom.py"]
