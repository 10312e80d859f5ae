"""``make backfill``: the inputs already in a bucket, totalled (``localrun.backfill``).

The command line only: the work is in ``src/localrun/backfill.py``, which the tests import.
"""

import needs_python  # noqa: F401 - first: one line, not a traceback, on Python < 3.11

# isort: split
import sys

from localrun.backfill import main

if __name__ == "__main__":
    sys.exit(main())
