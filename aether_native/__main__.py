"""`python -m aether_native` is the `aether` command."""

import sys

from aether_native.cli import main

if __name__ == "__main__":
    sys.exit(main())
