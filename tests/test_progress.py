"""`python -m llmlab progress`: runs copies of workspace notebooks, reports each exercise, never touches workspace/."""

from __future__ import annotations

import json

import nbformat
import pytest

from llmlab.kit import cli, progress

CHECK = '''
def check(n, title):
    if n != 42:
        raise AssertionError(f"{title}: expected 42, got {n}")
    print(f"✔ {title}: passed (1 cases)")
'''


def learner_notebook(path):
    """One passing, one failing, one hanging and one untouched exercise, as a learner's workspace copy."""
    nb = nbformat.v4.new_notebook()
    cells = [("md", "# 99 · Exercises"), ("code", CHECK),
             ("md", "## Exercise 99.1 — pass"), ("code", "check(42, 'Exercise 99.1 answer')"),
             ("md", "## Exercise 99.2 — fail"), ("code", "check(41, 'Exercise 99.2 answer')"),
             ("md", "## Exercise 99.3 — hang"), ("code", "import time\ntime.sleep(60)\ncheck(42, 'Exercise 99.3 x')"),
             ("md", "## Exercise 99.4 — untouched"),
             ("code", 'raise NotImplementedError("Exercise 99.4: write your code here")')]
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src))
    nbformat.write(nb, path)


def test_progress_reports_pass_fail_hang_and_not_started_without_touching_workspace(tmp_path, capsys):
    ws = tmp_path / "workspace"
    ws.mkdir()
    learner_notebook(ws / "99_demo_exercises.ipynb")
    before = (ws / "99_demo_exercises.ipynb").read_bytes()
    results = progress.collect(ws, cell_timeout=4)
    assert (ws / "99_demo_exercises.ipynb").read_bytes() == before and sorted(p.name for p in ws.iterdir()) == [
        "99_demo_exercises.ipynb"]
    (r,) = results
    assert r.chapter == "99" and r.passed == 1
    assert [(e.exercise, e.status) for e in r.exercises] == [
        ("99.1", "passed"), ("99.2", "failed"), ("99.3", "timed out"), ("99.4", "not started")]
    assert "expected 42, got 41" in r.exercises[1].detail
    assert cli.main(["progress", "--workspace", str(ws), "--timeout", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["passed"] == 1 and data[0]["total"] == 4 and data[0]["exercises"][2]["status"] == "timed out"


def test_missing_workspace_tells_the_learner_what_to_run(tmp_path, capsys):
    assert cli.main(["progress", "--workspace", str(tmp_path / "nope")]) == 2
    assert "python -m llmlab start 02" in capsys.readouterr().err
    with pytest.raises(progress.NoWorkspace):
        progress.workspace_notebooks(tmp_path)


def test_bad_timeout_is_named():
    with pytest.raises(ValueError, match=r"cell_timeout must be in \(0, inf\), got 0"):
        progress.run_notebook(__file__, cell_timeout=0)
