"""nbgrader round trip: generate_assignment removes the same regions as build-exercises, and autograde gives full
marks to a completed notebook through the kit's own checks."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from llmlab.kit import exercises

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
_STUBS = re.compile(r'# YOUR CODE HERE\nraise NotImplementedError\(\)|raise NotImplementedError\("Exercise [^"]*"\)'
                    r"|YOUR ANSWER HERE|" + re.escape(exercises.MARKDOWN_STUB))


def normalised(nb: nbformat.NotebookNode) -> str:
    """Every cell's source joined, stubs replaced by one token, blank lines and indentation of stubs folded."""
    lines = [line.strip() for c in nb.cells for line in c.source.splitlines() if line.strip()]
    return _STUBS.sub("<STUB>", "\n".join(lines))


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """nbgrader runs `alembic` from PATH: make this interpreter's bin folder (the venv) findable."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


def nbgrader_api(course: Path):
    """An NbGraderAPI on a course folder, executing cells with a generous time limit."""
    pytest.importorskip("nbgrader")
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.ExecutePreprocessor.timeout = 300
    config.Execute.timeout = 300
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def test_nbgrader_generate_assignment_removes_the_same_regions_as_build_exercises(tmp_path):
    written = exercises.write_nbgrader_course(tmp_path)
    api = nbgrader_api(tmp_path)
    for src, path in zip(SOLUTIONS, written):
        assignment = path.parent.name
        result = api.generate_assignment(assignment)
        assert result["success"], result.get("error") or result.get("log")
        released = nbformat.read(tmp_path / "release" / assignment / src.name, as_version=4)
        ours = exercises.build_notebook(nbformat.read(src, as_version=4), src.name[:2])
        assert normalised(released) == normalised(ours), f"{src.name}: nbgrader and build-exercises differ"


@pytest.mark.model
def test_nbgrader_autograde_gives_full_marks_from_the_kits_checks(tmp_path):
    src = next(p for p in SOLUTIONS if p.name.startswith("01_"))
    exercises.write_nbgrader_course(tmp_path)
    api = nbgrader_api(tmp_path)
    assert api.generate_assignment("ch01")["success"]
    submitted = tmp_path / "submitted" / "learner1" / "ch01"
    submitted.mkdir(parents=True)
    shutil.copy(tmp_path / "source" / "ch01" / src.name, submitted / src.name)  # a completed notebook
    result = api.autograde("ch01", "learner1")
    assert result["success"], result.get("error") or result.get("log")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        sub = gb.find_submission("ch01", "learner1")
        checks = [g for nb in sub.notebooks for g in nb.grades if g.name.endswith("-check")]
        assert checks and all(g.auto_score == g.max_score == 1 for g in checks), \
            [(g.name, g.auto_score, g.max_score) for g in checks]
