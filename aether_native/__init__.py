"""aether_native: the recording side of aether (C core, Cython binding, CLI).

import aether_native
with aether_native.Sampler(interval="1ms") as s:
    run_my_code()
s.profile.to_speedscope("run.speedscope.json")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aether_perf.errors import AetherError, InvalidArgument, SamplerBusyError, SamplerStateError

from aether_native.counters import Counters
from aether_native.memory import AllocationTracker
from aether_native.pprof_server import PprofServer, serve_pprof
from aether_native.sampler import Sampler

if TYPE_CHECKING:
    from aether_perf.model import Profile


def load(path: str | os.PathLike[str]) -> Profile:
    """Read a profile saved with ``Profile.save`` (raises ProfileFormatError for anything else)."""
    from aether_perf.model import load as load_profile

    return load_profile(path)


def __getattr__(name: str) -> object:
    # The model (and numpy) load on first use, not when a program imports us to record.
    if name == "Profile":
        from aether_perf.model import Profile

        return Profile
    raise AttributeError(f"module 'aether_native' has no attribute {name!r}")


__all__ = [
    "AetherError",
    "AllocationTracker",
    "Counters",
    "InvalidArgument",
    "PprofServer",
    "Profile",
    "Sampler",
    "SamplerBusyError",
    "SamplerStateError",
    "load",
    "serve_pprof",
]
__version__ = "0.1.0"
