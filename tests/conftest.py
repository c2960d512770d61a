"""Shared test setup: the test directory on sys.path (pytest runs with --import-mode=importlib,
which does not put it there) so modules import their helpers (tests/workloads.py), and the
`browser` fixture for the tests that render our HTML and SVG in a real Chromium."""

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

#: Debian's Chromium (scripts/test.sh installs it), started as the machine notes say: without the
#: background-networking flags it keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium driven by playwright, for the tests that render our HTML and SVG.
    Skipped on a developer machine without it; under CI (CI set) a missing browser fails.
    Module-scoped, not session-wide: playwright's sync API runs an event loop in this thread
    while it is open, and later modules' asyncio.run() (monitor, load) refuse to start in one."""
    message = ""
    if importlib.util.find_spec("playwright") is None:
        message = "the playwright package is missing (pip install playwright)"
    elif shutil.which(CHROMIUM) is None:
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if message:
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
