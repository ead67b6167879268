"""python -m llmlab setup | lab | test: a learner's commands, with or without make (standard library only).

`setup` runs on the system Python 3.11 before .venv exists, so this module (and llmlab/__init__.py) must import
nothing outside the standard library; every other step runs in .venv as a subprocess with an argument list.
The Makefile's lab, test, setup and fetch targets call these same functions, so the two paths cannot drift.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

COMMANDS = ("setup", "lab", "test")
VENV = ".venv"
STAMP = ".llmlab-installed"  # inside .venv; the old Makefile touched the same file
STAMP_INPUTS = ("constraints.txt", "pyproject.toml")
RECIPE = "1"  # bump when the install steps below change, so existing environments are set up again
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # the Makefile exports the same (tests/test_cli.py checks)
PYTEST_ARGS = ["tests", "notebooks", "solutions", "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=300",
               "-p", "no:cacheprovider"]
PIP_NOISE = "neither a file nor a directory"  # pip's warning about the editable install's own folder
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"
FIRST_NOTEBOOK = "notebooks/00_setup_and_tour.ipynb"
NEEDS_PYTHON = (3, 11)
SECOND_TIER = "qwen2.5-coder-0.5b-instruct"  # models.SECOND_TIER (tests/test_cli.py checks they agree)

Runner = Callable[[list[str], dict[str, str], Path, str], int]  # (command, environment, folder, output) -> exit code


def project_root() -> Path:
    """The checkout that holds constraints.txt (the folder above this package, else the current folder)."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "constraints.txt").is_file() else Path.cwd()


def venv_python(venv: Path) -> Path:
    """The Python inside a virtual environment (Scripts\\python.exe on Windows, bin/python elsewhere)."""
    return venv / "Scripts" / "python.exe" if os.name == "nt" else venv / "bin" / "python"


def stamp_digest(root: Path) -> str:
    """A hash of what the environment is installed from: the install recipe, constraints.txt and pyproject.toml."""
    digest = hashlib.sha256(RECIPE.encode("utf-8"))
    for name in STAMP_INPUTS:
        path = root / name
        digest.update(name.encode("utf-8") + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()


def is_current(root: Path, venv: Path) -> bool:
    """Whether venv is set up from today's constraints.txt and pyproject.toml (its stamp matches them)."""
    stamp = venv / STAMP
    if not (stamp.is_file() and venv_python(venv).is_file()):
        return False
    text = stamp.read_text(encoding="utf-8").strip()
    if text:
        return text == stamp_digest(root)
    # an empty stamp was touched by the old Makefile: current when newer than its inputs, as make decided
    inputs = [root / name for name in STAMP_INPUTS if (root / name).is_file()]
    return all(stamp.stat().st_mtime >= path.stat().st_mtime for path in inputs)


def install_commands(python: str, venv: Path, create: bool) -> list[list[str]]:
    """The commands that create venv (when asked) and install the pinned packages and the kit into it."""
    py = str(venv_python(venv))
    commands = [[python, "-m", "venv", str(venv)]] if create else []
    return commands + [[py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                       [py, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[dev]"]]


def announcements_command(py: str) -> list[str]:
    """Turn off JupyterLab's "get Jupyter news?" prompt and its news fetch (offline classrooms)."""
    return [py, "-m", "jupyter", "labextension", "disable", "--level=sys_prefix", ANNOUNCEMENTS]


def tier_fetch_command(py: str) -> list[str]:
    """Fetch the opt-in second tier (about 1 GB once), whose live notebook cells `test` runs."""
    return [py, "-m", "llmlab", "fetch", SECOND_TIER]


def fetch_command(py: str) -> list[str]:
    """Make sure the model is in $LLMLAB_HOME (verifies checksums, downloads only if needed)."""
    return [py, "-m", "llmlab", "fetch"]


def lab_command(py: str, root: Path, extra: list[str]) -> list[str]:
    """JupyterLab rooted at the checkout, opened on notebook 00 (--allow-root when run as root)."""
    as_root = getattr(os, "geteuid", lambda: -1)() == 0
    return ([py, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}"] + (["--allow-root"] if as_root else [])
            + [FIRST_NOTEBOOK] + extra)


def suite_commands(py: str, extra: list[str]) -> list[list[str]]:
    """Exercise sync, lint, then pytest over the unit tests, the notebooks and the solutions."""
    return [[py, "-m", "llmlab", "build-exercises", "--check"], [py, "-m", "ruff", "check", "."],
            [py, "-m", "pytest", *PYTEST_ARGS, *extra]]


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment with the kit's offline settings (as the Makefile exports them) and overrides."""
    env = {**os.environ, **OFFLINE_ENV, **overrides}
    env.setdefault("LLMLAB_HOME", str(Path.home() / ".cache" / "llmlab"))
    return env


def show(cmd: list[str], root: Path) -> str:
    """A command as one line, with paths inside the checkout written relative to it."""
    prefix = str(root) + os.sep
    words = [word[len(prefix):] if word.startswith(prefix) else word for word in cmd]
    return subprocess.list2cmdline(words) if os.name == "nt" else shlex.join(words)


def execute(cmd: list[str], env: dict[str, str], root: Path, output: str = "show") -> int:
    """Run a command in the checkout; output "show", "quiet" (discarded) or "pip" (without pip's noise line)."""
    if output not in ("show", "quiet", "pip"):
        raise ValueError(f"output must be one of 'show', 'quiet', 'pip', got {output!r}")
    if output == "pip":
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                encoding="utf-8", errors="replace")
        for line in proc.stdout:
            if PIP_NOISE not in line:
                sys.stdout.write(line)
        return proc.wait()
    quiet = subprocess.DEVNULL if output == "quiet" else None
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=quiet, stderr=quiet)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # Ctrl+C reached the command too; let it decide (JupyterLab asks first)
            continue


def steps(commands: list[list[str]], env: dict[str, str], root: Path, dry_run: bool, run: Runner,
          output: str = "show") -> int:
    """Print and run commands in order; stop at the first that fails and return its exit code."""
    for cmd in commands:
        print(show(cmd, root), flush=True)
        code = 0 if dry_run else run(cmd, env, root, output)
        if code:
            return code
    return 0


def python_for(args: argparse.Namespace, root: Path) -> str:
    """The Python that runs the kit: this one with --no-venv, else the one in .venv."""
    return sys.executable if args.no_venv else str(venv_python(root / VENV))


def setup(args: argparse.Namespace, fetch: bool = True, run: Runner | None = None) -> int:
    """Create .venv and install the pinned packages unless its stamp is current, then fetch the model."""
    root, run = project_root(), run or execute
    venv, env = root / VENV, child_env()
    if args.no_venv:
        print(f"using this Python ({sys.executable}) as it is: nothing installed", flush=True)
    elif is_current(root, venv):
        print(f"{VENV} is up to date with {' and '.join(STAMP_INPUTS)}: nothing to install", flush=True)
    else:
        create = not venv_python(venv).is_file()
        if create and sys.version_info[:2] != NEEDS_PYTHON:
            print(f"llmlab needs Python {'.'.join(map(str, NEEDS_PYTHON))}, this is {sys.version.split()[0]}: run "
                  f"python3.11 -m llmlab setup (Windows: py -3.11 -m llmlab setup)", file=sys.stderr)
            return 1
        why = "it does not exist yet" if create else f"{' or '.join(STAMP_INPUTS)} changed since its last setup"
        print(f"setting up {VENV}: {why}", flush=True)
        *prepare, install = install_commands(sys.executable, venv, create)
        code = (steps(prepare, env, root, args.dry_run, run)
                or steps([install], env, root, args.dry_run, run, output="pip"))
        if code:
            return code
        if not args.dry_run:
            run(announcements_command(str(venv_python(venv))), env, root, "quiet")  # best effort, as before
            (venv / STAMP).write_text(stamp_digest(root) + "\n", encoding="utf-8")
    if not fetch:
        return 0
    return steps([fetch_command(python_for(args, root))], child_env(HF_HUB_OFFLINE="0"), root, args.dry_run, run)


def lab(args: argparse.Namespace, run: Runner | None = None) -> int:
    """Set up, print the doctor's lines, then open JupyterLab on notebook 00."""
    root, run = project_root(), run or execute
    code = setup(args, run=run)
    if code:
        return code
    py = python_for(args, root)
    steps([[py, "-m", "llmlab", "doctor"]], child_env(), root, args.dry_run, run)  # a FAIL line does not stop lab
    return steps([lab_command(py, root, args.extra)], child_env(), root, args.dry_run, run)


def test(args: argparse.Namespace, run: Runner | None = None) -> int:
    """Set up, fetch the opt-in tier (best effort), then run everything: exercise sync, lint, unit tests, notebooks,
    check-can-fail tests."""
    root, run = project_root(), run or execute
    code = setup(args, run=run)
    if code:
        return code
    py = python_for(args, root)
    if steps([tier_fetch_command(py)], child_env(HF_HUB_OFFLINE="0"), root, args.dry_run, run):
        print(f"the opt-in tier {SECOND_TIER} could not be fetched: its live notebook cells will say so and skip",
              flush=True)
    *checks, pytest = suite_commands(py, args.extra)
    return (steps(checks, child_env(), root, args.dry_run, run)
            or steps([pytest], child_env(LLMLAB_BLOCK_NETWORK="1"), root, args.dry_run, run))


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add setup, lab and test to a subparsers object (python -m llmlab's, or this module's own)."""
    helps = {"setup": "create .venv from constraints.txt (only when it changed) and fetch the model",
             "lab": "set up, then open JupyterLab on the notebooks (extra arguments go to jupyter lab)",
             "test": "set up, then run every test and notebook (extra arguments go to pytest)"}
    funcs = {"setup": lambda args: setup(args, fetch=not args.no_fetch), "lab": lab, "test": test}
    for name in COMMANDS:
        p = sub.add_parser(name, help=helps[name], allow_abbrev=False)
        p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
        p.add_argument("--no-venv", action="store_true",
                       help="use the Python running this (conda, a hub's image) instead of creating .venv")
        if name == "setup":
            p.add_argument("--no-fetch", action="store_true", help="only install, do not fetch the model")
        p.set_defaults(func=funcs[name], extra=[])


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse setup/lab/test arguments; lab and test pass on what they do not know, and everything after --."""
    parser = argparse.ArgumentParser(prog="python -m llmlab", description=__doc__.splitlines()[0],
                                     epilog="lab and test pass unknown arguments, and all after --, to jupyter lab "
                                            "and pytest")
    add_commands(parser.add_subparsers(dest="command", required=True))
    cut = argv.index("--") if "--" in argv else len(argv)
    args, unknown = parser.parse_known_args(argv[:cut])
    if unknown and args.command == "setup":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.extra = unknown + argv[cut + 1:]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run python -m llmlab setup | lab | test."""
    args = parse(sys.argv[1:] if argv is None else argv)
    return args.func(args)
