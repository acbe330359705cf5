"""`python -m pipeline.simulator [options]`: the same as `run-pipeline simulate`."""

from __future__ import annotations

import sys

from pipeline.commands.simulate import main

sys.exit(main())
