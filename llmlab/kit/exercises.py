"""Exercise notebooks: build learner versions from solutions/ and copy them into workspace/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
MARKDOWN_STUB = "_Your answer here._"
STUB_ERROR = NotImplementedError  # what a code stub raises until the learner replaces it (as in nbgrader)
NOT_STARTED = f"not implemented yet: replace the `raise {STUB_ERROR.__name__}(...)` line with your code"
_HEADING = re.compile(r"Exercise\s+(\d+)\.(\d+)")


def project_root() -> Path:
    """The checkout that holds notebooks/, solutions/ and exercises/ (else the current folder)."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "solutions").is_dir() else Path.cwd()


def stub_source(source: str, label: str, markdown: bool = False) -> str:
    """Replace every BEGIN/END SOLUTION region with a stub (a raise, or a prompt in markdown)."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{label}: nested '{BEGIN}' (close the previous region with '{END}')")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{MARKDOWN_STUB}" if markdown
                       else f'{indent}raise {STUB_ERROR.__name__}("{label}: write your code here")')
        elif stripped == END:
            if not inside:
                raise ValueError(f"{label}: '{END}' without a matching '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{label}: '{BEGIN}' is never closed with '{END}'")
    return "\n".join(out)


def has_solution(source: str) -> bool:
    """Whether a cell source contains a solution region."""
    return any(line.strip() == BEGIN for line in source.splitlines())


def build_notebook(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """Learner version of a solutions notebook: regions stubbed, outputs cleared."""
    out = nbformat.reads(nbformat.writes(nb), as_version=4)
    exercise = f"{chapter}.?"
    counter = 0
    for cell in out.cells:
        if cell.cell_type == "markdown" and (m := _HEADING.search(cell.source)):
            exercise = f"{m.group(1)}.{m.group(2)}"
        if has_solution(cell.source):
            if exercise.endswith("?"):
                counter += 1
                label = f"Exercise {chapter}.{counter}"
            else:
                label = f"Exercise {exercise}"
            cell.source = stub_source(cell.source, label, markdown=cell.cell_type == "markdown")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return out


def build_all(root: Path | None = None, check: bool = False) -> list[str]:
    """Write exercises/ from solutions/; with check=True write nothing and list what is out of date."""
    root = root or project_root()
    src_dir, dst_dir = root / "solutions", root / "exercises"
    if not src_dir.is_dir():
        raise FileNotFoundError(f"no solutions/ folder under {root}")
    stale: list[str] = []
    expected: set[str] = set()
    for src in sorted(src_dir.glob("[0-9][0-9]_*.ipynb")):
        chapter = src.name[:2]
        text = nbformat.writes(build_notebook(nbformat.read(src, as_version=4), chapter)) + "\n"
        dst = dst_dir / src.name
        expected.add(dst.name)
        if not dst.is_file() or dst.read_text(encoding="utf-8") != text:
            stale.append(str(dst.relative_to(root)))
            if not check:
                dst_dir.mkdir(exist_ok=True)
                dst.write_text(text, encoding="utf-8")
    for extra in sorted(dst_dir.glob("*.ipynb")) if dst_dir.is_dir() else []:
        if extra.name not in expected:
            stale.append(f"{extra.relative_to(root)} (no source in solutions/)")
            if not check:
                extra.unlink()
    return stale


def chapters(root: Path | None = None) -> dict[str, Path]:
    """Exercise notebooks by two-digit chapter number."""
    root = root or project_root()
    return {p.name[:2]: p for p in sorted((root / "exercises").glob("[0-9][0-9]_*.ipynb"))}


def workspace_dir(root: Path | None = None) -> Path:
    """Where a learner works: $LLMLAB_WORKSPACE (set per learner on a JupyterHub), else <checkout>/workspace."""
    env = os.environ.get("LLMLAB_WORKSPACE", "").strip()
    return Path(env).expanduser() if env else (root or project_root()) / "workspace"


def start(chapter: str | int, root: Path | None = None) -> tuple[Path, bool]:
    """Copy chapter NN's exercise notebook into the workspace; never overwrites. Returns (path, copied)."""
    root = root or project_root()
    known = chapters(root)
    key = f"{int(chapter):02d}" if str(chapter).isdigit() else str(chapter)
    if key not in known:
        raise ValueError(f"chapter must be one of {sorted(known)}, got {chapter!r}")
    dst = workspace_dir(root) / known[key].name
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(dst, "xb") as fh:  # exclusive create: an existing file is never touched
            fh.write(known[key].read_bytes())
    except FileExistsError:
        return dst, False
    return dst, True


_CHECK_CALL = re.compile(r"^ch\d\d\.check_\w+\(")


def _nbgrader_meta(grade_id: str, solution: bool, grade: bool, points: int = 0) -> dict:
    """nbgrader's cell metadata (schema 3) for one cell."""
    meta = {"schema_version": 3, "grade_id": grade_id, "solution": solution, "grade": grade,
            "locked": not solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def nbgrader_source(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """The solutions notebook as an nbgrader *source* notebook, with the same solution regions.

    A code cell holding a solution is split where its first top-level `chNN.check_...(` call starts: the part
    before is an autograded answer cell (nbgrader removes the same BEGIN/END SOLUTION regions build-exercises
    removes), the check and what follows it is a locked autograder-tests cell worth 1 point, so the kit's own
    checks give the marks. A markdown answer becomes a manually graded answer (1 point); other cells are read-only.
    """
    out = nbformat.reads(nbformat.writes(nb), as_version=4)
    cells, exercise, n, parts = [], f"{chapter}_0", 0, {}
    for cell in out.cells:
        if cell.cell_type == "markdown" and (m := _HEADING.search(cell.source)):
            exercise = f"{m.group(1)}_{m.group(2)}"  # grade ids allow letters, digits, _ and - only
        n += 1
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if not has_solution(cell.source):
            cell.metadata["nbgrader"] = _nbgrader_meta(f"cell-{n}", solution=False, grade=False)
            cells.append(cell)
            continue
        parts[exercise] = parts.get(exercise, 0) + 1  # an exercise in several parts (13.2: two functions)
        part = exercise if parts[exercise] == 1 else f"{exercise}-{parts[exercise]}"
        if cell.cell_type == "markdown":
            cell.metadata["nbgrader"] = _nbgrader_meta(f"ex-{part}-written", True, True, 1)
            cells.append(cell)
            continue
        lines = cell.source.splitlines()
        split = next((i for i, line in enumerate(lines) if _CHECK_CALL.match(line)), len(lines))
        cell.source = "\n".join(lines[:split]).rstrip()
        cell.metadata["nbgrader"] = _nbgrader_meta(f"ex-{part}-answer", solution=True, grade=False)
        cells.append(cell)
        if split < len(lines):
            check = nbformat.v4.new_code_cell("\n".join(lines[split:]).strip())
            check.metadata["nbgrader"] = _nbgrader_meta(f"ex-{part}-check", False, True, 1)
            cells.append(check)
    out.cells = cells
    return out


def write_nbgrader_course(course: Path, root: Path | None = None, assignment_prefix: str = "ch") -> list[Path]:
    """Write every solutions notebook as nbgrader source (course/source/chNN/NN_*.ipynb); returns the paths."""
    root = root or project_root()
    written = []
    for src in sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        chapter = src.name[:2]
        dst = Path(course) / "source" / f"{assignment_prefix}{chapter}" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_source(nbformat.read(src, as_version=4), chapter), dst)
        written.append(dst)
    return written
