"""``python -m tools.bench``: see ``tools/bench/run.py``."""

import sys

from .run import main

sys.exit(main())
