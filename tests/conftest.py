"""Lets the test modules import their shared helpers (tests/workloads.py): pytest runs with
--import-mode=importlib, which does not put the test directory on sys.path."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
