"""`python -m engine …`: the command line lives in engine/cli.py."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
