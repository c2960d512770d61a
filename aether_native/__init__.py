"""aether_native: the recording side of aether (C core, Cython binding, CLI).

    import aether_native
    with aether_native.Sampler(interval="1ms") as s:
        run_my_code()
    s.profile.to_speedscope("run.speedscope.json")
"""

from aether_perf.errors import AetherError, InvalidArgument, SamplerBusyError, SamplerStateError
from aether_perf.model import Profile, load

from aether_native.sampler import Sampler

__all__ = [
    "AetherError",
    "InvalidArgument",
    "Profile",
    "Sampler",
    "SamplerBusyError",
    "SamplerStateError",
    "load",
]
__version__ = "0.1.0"
