"""`python -m pipeline.simulator [options]`: the same as `run-pipeline simulate`, through the
product's one error funnel."""

from __future__ import annotations

import sys

from pipeline.cli.main import main

sys.exit(main(["simulate", *sys.argv[1:]]))
