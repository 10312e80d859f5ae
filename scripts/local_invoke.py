"""``make run``: the function on this machine, with an embedded S3 (``localrun.invoke``).

The command line only: the work is in ``src/localrun/invoke.py``, which the tests import.
"""

import needs_python  # noqa: F401 - first: one line, not a traceback, on Python < 3.11

# isort: split
import sys

from localrun.invoke import main

if __name__ == "__main__":
    sys.exit(main())
