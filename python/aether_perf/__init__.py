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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from aether_perf.instrumentation import instrument, profile_scope, record_duration
    from aether_perf.model import Frame, Profile, ProfileMeta, ThreadInfo, load_profile

# Not "load": aether_perf.load is the load-testing package (aether_perf.model.load reads a profile).
_MODEL_NAMES = ("Frame", "Profile", "ProfileMeta", "ThreadInfo", "load_profile")
_INSTRUMENTATION_NAMES = ("instrument", "profile_scope", "record_duration")


def __getattr__(name: str) -> object:
    # The model needs numpy; importing it lazily keeps `import aether_perf.errors` (which the
    # recorder does inside the profiled program) from loading numpy and its BLAS threads there.
    if name in _MODEL_NAMES:
        from aether_perf import model

        return getattr(model, name)
    if name in _INSTRUMENTATION_NAMES:
        from aether_perf import instrumentation

        return getattr(instrumentation, name)
    raise AttributeError(f"module 'aether_perf' has no attribute {name!r}")


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
    "instrument",
    "load_profile",
    "profile_scope",
    "record_duration",
]
