"""Every text file the kit opens names its encoding (Windows would otherwise use the locale's code page)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("llmlab", "benchmarks")


def _mode(call: ast.Call, position: int) -> str | None:
    """The mode argument of an open() call when written as a string literal; "r" when left out, None if unknown."""
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else None
    if len(call.args) > position:
        arg = call.args[position]
        return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
    return "r"


def missing_encoding(call: ast.Call) -> str | None:
    """The name of a text-mode file call that does not say its encoding, else None."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if any(keyword.arg == "encoding" for keyword in call.keywords) or any(
            keyword.arg is None for keyword in call.keywords):  # encoding given, or maybe inside **kwargs
        return None
    if name in ("read_text", "write_text"):
        return name if len(call.args) < (1 if name == "read_text" else 2) else None
    if name == "open" and isinstance(func, ast.Name):  # open(file, mode="r", buffering, encoding)
        mode = _mode(call, 1)
        return "open" if mode is not None and "b" not in mode and len(call.args) < 4 else None
    if name in ("open", "fdopen") and isinstance(func, ast.Attribute):
        # Path.open(mode) and os.fdopen(fd, mode); zipfile's or urllib's .open(name) take no mode: left alone
        position = 1 if name == "fdopen" else 0
        mode = _mode(call, position)
        literal_mode = len(call.args) <= position or isinstance(call.args[position], ast.Constant) or any(
            keyword.arg == "mode" for keyword in call.keywords)
        return name if literal_mode and mode is not None and "b" not in mode else None
    return None


def offenders(paths: list[Path]) -> list[str]:
    """'path:line: call' for every text-mode file call without an encoding in these Python files."""
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (name := missing_encoding(node)):
                found.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno}: {name}() without encoding=")
    return found


def source_files() -> list[Path]:
    """The kit's Python sources that are scanned."""
    return sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def calls(source: str) -> list[str | None]:
    """missing_encoding() for each call in a snippet, in source order."""
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)]
    return [missing_encoding(n) for n in sorted(nodes, key=lambda n: (n.lineno, n.col_offset))]


@pytest.mark.parametrize("source, expected", [
    ("open(p)", "open"), ("open(p, 'w')", "open"), ("open(p, mode='a')", "open"),
    ("open(p, encoding='utf-8')", None), ("open(p, 'rb')", None), ("open(p, 'xb')", None),
    ("p.read_text()", "read_text"), ("p.read_text('utf-8')", None), ("p.read_text(encoding='utf-8')", None),
    ("p.write_text(s)", "write_text"), ("p.write_text(s, encoding='utf-8')", None), ("p.write_text(s, 'utf-8')", None),
    ("p.open()", "open"), ("p.open('w')", "open"), ("p.open('rb')", None), ("p.open('w', encoding='utf-8')", None),
    ("zf.open(member)", None), ("opener.open(url, timeout=5)", None), ("os.fdopen(fd, 'w')", "fdopen"),
    ("p.read_bytes()", None), ("open(p, **options)", None),
])
def test_the_scanner_tells_text_calls_without_encoding(source, expected):
    assert calls(source) == [expected]


def test_a_comment_or_a_string_does_not_fool_the_scanner():
    assert calls("# open(p)\nx = 'p.read_text()'\n") == []
    assert calls("f(\n    p.read_text(\n    )\n)") == [None, "read_text"]


def test_every_text_file_call_in_the_kit_names_its_encoding():
    files = source_files()
    assert any(p.name == "fetch.py" for p in files)
    bad = offenders(files)
    assert not bad, "add encoding=\"utf-8\" to:\n" + "\n".join(bad)
