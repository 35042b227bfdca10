"""``python -m neurohash``: the same command line as ``neurohash``."""

import sys

from neurohash.cli import main

if __name__ == "__main__":
    sys.exit(main())
