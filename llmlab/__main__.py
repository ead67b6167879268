"""Entry point for `python -m llmlab`: setup, lab and test need only the standard library (they run before .venv)."""

import sys

from llmlab.kit import launch

if len(sys.argv) > 1 and sys.argv[1] in launch.COMMANDS:
    sys.exit(launch.main(sys.argv[1:]))

try:
    from llmlab.kit.cli import main  # imports torch and the rest of the kit, so only after the commands above
except ModuleNotFoundError as exc:
    python = launch.show([str(launch.venv_python(launch.project_root() / launch.VENV))], launch.project_root())
    sys.exit(f"python -m llmlab {' '.join(sys.argv[1:])}: this Python lacks {exc.name!r}. Run python3.11 -m llmlab "
             f"setup once (Windows: py -3.11 -m llmlab setup), then use {python} -m llmlab ...")

sys.exit(main())
