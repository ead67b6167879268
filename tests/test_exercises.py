"""Exercise builder, the sync of exercises/ with solutions/, and `start` never overwriting workspace/."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from llmlab.kit import exercises

ROOT = Path(__file__).resolve().parent.parent


def make_project(tmp_path: Path, cells: list) -> Path:
    """A project folder with one solutions notebook made of (kind, source) cells."""
    nb = nbformat.v4.new_notebook()
    for kind, src in cells:
        cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        if kind == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="old output")]
            cell.execution_count = 3
        nb.cells.append(cell)
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "07_demo_exercises.ipynb")
    return tmp_path


def test_stub_source_keeps_indentation_and_surrounding_code():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\ncheck(f)"
    assert exercises.stub_source(src, "Exercise 07.1") == (
        'def f(x):\n    y = 1\n    raise NotImplementedError("Exercise 07.1: write your code here")\n\ncheck(f)')


@pytest.mark.parametrize("src,message", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a matching"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
])
def test_unbalanced_markers_are_reported(src, message):
    with pytest.raises(ValueError, match=f"Exercise 07.1: .*{message}"):
        exercises.stub_source(src, "Exercise 07.1")


def test_build_labels_exercises_from_headings_and_clears_outputs(tmp_path):
    root = make_project(tmp_path, [
        ("md", "## Exercise 07.2 — something"),
        ("code", "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        ("md", "Explain:\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        ("code", "print('kept')"),
    ])
    assert exercises.build_all(root) == ["exercises/07_demo_exercises.ipynb"]
    nb = nbformat.read(root / "exercises" / "07_demo_exercises.ipynb", as_version=4)
    assert 'raise NotImplementedError("Exercise 07.2: write your code here")' in nb.cells[1].source
    assert "return 1" not in nb.cells[1].source
    assert nb.cells[2].source == "Explain:\n" + exercises.MARKDOWN_STUB
    assert nb.cells[3].source == "print('kept')"
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_check_mode_reports_stale_and_orphaned_notebooks_without_writing(tmp_path):
    root = make_project(tmp_path, [("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    assert exercises.build_all(root, check=True) == ["exercises/07_demo_exercises.ipynb"]
    assert not (root / "exercises").exists()
    exercises.build_all(root)
    assert exercises.build_all(root, check=True) == []
    (root / "exercises" / "09_orphan_exercises.ipynb").write_text("{}", encoding="utf-8")
    assert exercises.build_all(root, check=True) == ["exercises/09_orphan_exercises.ipynb (no source in solutions/)"]
    exercises.build_all(root)
    assert not (root / "exercises" / "09_orphan_exercises.ipynb").exists()


def test_repository_exercises_are_in_sync_and_contain_no_solutions():
    assert exercises.build_all(ROOT, check=True) == []
    for path in (ROOT / "exercises").glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert exercises.BEGIN not in text and exercises.END not in text, path.name
    sources = sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert sources == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))


def test_every_solution_notebook_has_checked_exercises():
    for path in (ROOT / "solutions").glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        regions = [c for c in nb.cells if exercises.has_solution(c.source)]
        assert regions, f"{path.name} has no solution regions"
        assert all(f"ch{path.name[:2]}.check_" in c.source for c in regions if c.cell_type == "code"), path.name


def test_start_copies_once_and_never_overwrites(tmp_path):
    root = make_project(tmp_path, [("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    exercises.build_all(root)
    path, copied = exercises.start("07", root)
    assert copied and path == root / "workspace" / "07_demo_exercises.ipynb"
    path.write_text("my own work", encoding="utf-8")
    path2, copied2 = exercises.start(7, root)
    assert (path2, copied2) == (path, False)
    assert path.read_text(encoding="utf-8") == "my own work"


def test_start_unknown_chapter_lists_chapters(tmp_path):
    root = make_project(tmp_path, [("code", "x = 1")])
    exercises.build_all(root)
    with pytest.raises(ValueError, match=r"chapter must be one of \['07'\], got '42'"):
        exercises.start("42", root)
    assert not (root / "workspace").exists() or not any((root / "workspace").iterdir())
