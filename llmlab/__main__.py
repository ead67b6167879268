"""Entry point for `python -m llmlab`."""

import sys

from llmlab.cli import main

sys.exit(main())
