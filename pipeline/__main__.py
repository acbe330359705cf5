"""`python -m pipeline` is the same as the `run-pipeline` console script."""

from __future__ import annotations

import sys

from pipeline.cli.main import main

sys.exit(main())
