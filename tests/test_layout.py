"""The README's layout section matches the tree: every top-level module and subpackage of llmlab/ is listed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llmlab"
KIT = {"cli", "launch", "exercises", "progress", "classroom", "fetch", "netguard", "fixtures", "lit_app"}


def layout_block() -> str:
    """The fenced tree under '## Layout' in the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout"):]
    return section[section.index("```"):section.index("```", section.index("```") + 3)]


def test_readme_layout_lists_every_top_level_module_and_subpackage():
    block = layout_block()
    names = {p.stem for p in PACKAGE.glob("*.py") if not p.name.startswith("__")}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = [n for n in sorted(names) if not re.search(rf"\b{n}\.py\b", block)]
    missing += [n for n in sorted(folders) if f"{n}/" not in block]
    assert not missing, f"the README layout does not list: {missing}"


def test_machinery_lives_in_kit_and_nowhere_else():
    assert KIT <= {p.stem for p in (PACKAGE / "kit").glob("*.py")}
    assert not KIT & {p.stem for p in PACKAGE.glob("*.py")}, "a kit module is back at the top level"
    assert not list((PACKAGE / "data").glob("ch*_make_*.py")), "data generators belong in scripts/data/"
