"""aether_perf: the pure-Python layer of aether-native.

It opens, converts and analyses profiles with no compiler and no native code: the model
(:class:`Profile`), analyses (``aether_perf.analysis``), exporters (``aether_perf.export``) and
reports (``aether_perf.report``). It never imports ``aether_native``.
"""

from aether_perf.errors import (
    AetherError,
    InvalidArgument,
    ProfileFormatError,
    RunFailed,
    SamplerBusyError,
    SamplerStateError,
)
from aether_perf.model import Frame, Profile, ProfileMeta, ThreadInfo, load

__all__ = [
    "AetherError",
    "Frame",
    "InvalidArgument",
    "Profile",
    "ProfileFormatError",
    "ProfileMeta",
    "RunFailed",
    "SamplerBusyError",
    "SamplerStateError",
    "ThreadInfo",
    "load",
]
