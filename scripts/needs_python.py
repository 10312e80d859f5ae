"""Imported first by ``make run``'s and ``make backfill``'s scripts: on a Python older than 3.11
they would end in a traceback (``datetime.UTC`` and more); this ends them with one line naming
the version needed. Written in the Python every python3 can import."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - the point: it runs on older Pythons too
    found = ".".join(map(str, sys.version_info[:3]))
    sys.exit(
        f"{sys.argv[0]}: error: Python 3.11 or newer is needed; this is Python {found} "
        f"({sys.executable})"
    )
