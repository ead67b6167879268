"""Learner progress: run the exercise notebooks in workspace/ (a temporary copy, never the originals) and report
which exercises pass their checks, per chapter, for the learner or (as JSON) for an instructor to collect.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from llmlab import validate as V
from llmlab.kit.exercises import STUB_ERROR, workspace_dir

_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+\.\d+)", re.M)
_PASSED = re.compile(r"✔\s*Exercise\s+(\d+\.\d+)")
STATUSES = ("passed", "failed", "not started", "timed out")


class NoWorkspace(FileNotFoundError):
    """There is no workspace/ folder (or no exercise notebook in it)."""


@dataclass
class ExerciseResult:
    """One exercise's outcome: passed, failed, not started (the stub still raises) or timed out; and why."""

    exercise: str
    status: str
    detail: str = ""


@dataclass
class NotebookResult:
    """One workspace notebook: its chapter, each exercise's result and how long the run took."""

    notebook: str
    chapter: str
    exercises: list[ExerciseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        """How many exercises passed."""
        return sum(e.status == "passed" for e in self.exercises)


def exercise_of_cells(nb: nbformat.NotebookNode) -> list[str | None]:
    """For each cell, the exercise ('02.3') whose section it belongs to (None before the first heading)."""
    current, out = None, []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := _HEADING.search(cell.source)):
            current = m.group(1)
        out.append(current)
    return out


def _output_text(cell) -> str:
    """All text a code cell printed or raised."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
        elif "data" in o:
            parts.append(o["data"].get("text/plain", ""))
    return "".join(parts)


def _error_of(cell) -> tuple[str, str] | None:
    """(exception name, message) of the error a code cell raised, if any."""
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return o.get("ename", ""), o.get("evalue", "")
    return None


def judge(nb: nbformat.NotebookNode, timed_out: set[int]) -> list[ExerciseResult]:
    """Each exercise's result from an executed notebook and the indices of the cells that timed out."""
    owners = exercise_of_cells(nb)
    order = list(dict.fromkeys(e for e in owners if e is not None))
    results = {e: ExerciseResult(e, "passed") for e in order}
    passed = {e for i, c in enumerate(nb.cells) if c.cell_type == "code" for e in _PASSED.findall(_output_text(c))}
    for i, (cell, owner) in enumerate(zip(nb.cells, owners)):
        if owner is None or cell.cell_type != "code" or results[owner].status != "passed":
            continue
        error = _error_of(cell)
        if i in timed_out or (error and error[0] == "KeyboardInterrupt"):  # nbclient interrupts a cell that hangs
            results[owner] = ExerciseResult(owner, "timed out", "a cell ran past the time limit")
        elif error and error[0] == STUB_ERROR.__name__:
            results[owner] = ExerciseResult(owner, "not started", error[1])
        elif error:
            results[owner] = ExerciseResult(owner, "failed", f"{error[0]}: {error[1]}".strip()[:300])
    for e in order:
        if results[e].status == "passed" and e not in passed:
            results[e] = ExerciseResult(e, "failed", "its check never printed a ✔ pass line")
    return [results[e] for e in order]


def run_notebook(path: Path, cell_timeout: float = 120, kernel: str = "python3") -> NotebookResult:
    """Execute a copy of one exercise notebook cell by cell (errors and time-outs do not stop it) and judge it."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    V.number("cell_timeout", cell_timeout, low=0, low_open=True)
    start = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    timed_out: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="llmlab-progress-") as tmp:
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name=kernel, allow_errors=True,
                                resources={"metadata": {"path": tmp}}, interrupt_on_timeout=True)
        with client.setup_kernel():
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except (CellTimeoutError, TimeoutError):
                    timed_out.add(index)
                except CellExecutionError:
                    pass
                except DeadKernelError:
                    timed_out.add(index)
                    break
    chapter = path.name[:2]
    return NotebookResult(path.name, chapter, judge(nb, timed_out), round(time.perf_counter() - start, 1))


def workspace_notebooks(workspace: Path | None = None) -> list[Path]:
    """The exercise notebooks in workspace/, sorted; NoWorkspace (saying what to run) when there are none."""
    folder = Path(workspace) if workspace is not None else workspace_dir()
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else []
    if not found:
        raise NoWorkspace(f"no exercise notebooks in {folder}: start a chapter first, for example "
                          "`python -m llmlab start 02`, then work in the copy it makes there")
    return found


def collect(workspace: Path | None = None, cell_timeout: float = 120, chapters: list[str] | None = None,
            ) -> list[NotebookResult]:
    """Run every (or the named chapters') workspace notebook from a temporary copy; the originals are only read."""
    paths = workspace_notebooks(workspace)
    if chapters:
        paths = [p for p in paths if p.name[:2] in {c.zfill(2) for c in chapters}]
    results = []
    with tempfile.TemporaryDirectory(prefix="llmlab-progress-copy-") as tmp:
        for path in paths:
            copy = Path(tmp) / path.name
            shutil.copyfile(path, copy)
            results.append(run_notebook(copy, cell_timeout))
    return results


def as_json(results: list[NotebookResult]) -> list[dict]:
    """Plain dicts for instructors to collect (one per notebook)."""
    return [{**asdict(r), "passed": r.passed, "total": len(r.exercises)} for r in results]


def summary_lines(results: list[NotebookResult]) -> list[str]:
    """Human-readable lines: one per chapter, one per exercise that did not pass."""
    marks = {"passed": "✔", "failed": "✘", "not started": "·", "timed out": "⏱"}
    lines = []
    for r in results:
        lines.append(f"chapter {r.chapter} ({r.notebook}): {r.passed}/{len(r.exercises)} exercises pass "
                     f"[{r.seconds:.0f} s]")
        for e in r.exercises:
            lines.append(f"  {marks[e.status]} {e.exercise} {e.status}" + (f" — {e.detail}" if e.detail else ""))
    return lines
