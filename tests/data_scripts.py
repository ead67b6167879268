"""Load a data-generator script from scripts/data/ (outside the installed package) as a module, for tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts" / "data"


def load_script(name: str) -> ModuleType:
    """The module scripts/data/<name>.py, executed once per call (its __main__ block does not run)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
