"""The exceptions of aether.

Everything aether raises on purpose derives from :class:`AetherError`, so a caller (the CLI in
particular) can turn any of them into one line on stderr: exit status 2 for bad input
(:class:`InvalidArgument`), 1 for a run that failed (:class:`RunFailed`) and for the rest.
"""

from __future__ import annotations

__all__ = [
    "AetherError",
    "CounterUnavailable",
    "InvalidArgument",
    "ProfileFormatError",
    "RunFailed",
    "SamplerBusyError",
    "SamplerStateError",
]


class AetherError(Exception):
    """Base class of every error aether raises on purpose."""


class InvalidArgument(AetherError, ValueError):
    """A value given by the user (API argument or CLI option) is not acceptable."""


class ProfileFormatError(AetherError):
    """A file is not one aether can read: missing, truncated, not ours, from a newer version, corrupt.

    The message is one line that names the path and says what is wrong with it.
    """


class SamplerStateError(AetherError, RuntimeError):
    """A sampler was asked to do something its current state does not allow (stop before start...)."""


class SamplerBusyError(AetherError, RuntimeError):
    """Another sampler already owns the process-wide sampling machinery."""


class RunFailed(AetherError):
    """A profiled run, benchmark or load test did not complete."""


class CounterUnavailable(RunFailed):
    """A perf_event counter that a recording needs cannot be opened here; the message says why."""
