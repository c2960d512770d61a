"""track(): instrument the threading and asyncio locks a program creates while it is active.

It swaps the names in ``threading`` (``Lock``, ``RLock``, ``Condition``, ``Semaphore``,
``BoundedSemaphore``) and ``asyncio`` (``Lock``) for the instrumented classes (so they can still
be called and subclassed) and puts the originals back on exit. Locks made meanwhile stay
instrumented after exit and keep counting into the tracker. Code that bound a name before
(``from threading import Lock`` at import time) keeps the real lock, and ``isinstance`` against
the real classes fails for instrumented locks.
"""

from __future__ import annotations

import asyncio
import asyncio.locks
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aether_perf.locks.instrumented import (
    InstrumentedAsyncioLock,
    InstrumentedBoundedSemaphore,
    InstrumentedCondition,
    InstrumentedLock,
    InstrumentedRLock,
    InstrumentedSemaphore,
    set_current_registry,
)
from aether_perf.locks.stats import LockRegistry, LockStats

__all__ = ["LockTracker", "track"]

_track_guard = threading._allocate_lock()  # type: ignore[attr-defined]


class LockTracker:
    """What :func:`track` yields: the registry of the locks created under it."""

    def __init__(self) -> None:
        self.registry = LockRegistry()

    def stats(self) -> list[LockStats]:
        """Per-name statistics, most contended first (see :meth:`LockRegistry.stats`)."""
        return self.registry.stats()


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (threading, "Lock", InstrumentedLock),
    (threading, "RLock", InstrumentedRLock),
    (threading, "Condition", InstrumentedCondition),
    (threading, "Semaphore", InstrumentedSemaphore),
    (threading, "BoundedSemaphore", InstrumentedBoundedSemaphore),
    (asyncio, "Lock", InstrumentedAsyncioLock),
    (asyncio.locks, "Lock", InstrumentedAsyncioLock),
)


@contextmanager
def track(*, threading_locks: bool = True, asyncio_locks: bool = True) -> Iterator[LockTracker]:
    """Instrument the locks created inside the ``with`` block; yields a :class:`LockTracker`.

    Nested or concurrent ``track()`` blocks are refused (ValueError): the factories are global.
    """
    if not _track_guard.acquire(False):
        raise ValueError("aether_perf.locks.track() is already active")
    tracker = LockTracker()
    saved: list[tuple[Any, str, Any]] = []
    try:
        for module, attr, factory in _PATCHES:
            is_asyncio = module is not threading
            if (is_asyncio and not asyncio_locks) or (not is_asyncio and not threading_locks):
                continue
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, factory)
        set_current_registry(tracker.registry)
        yield tracker
    finally:
        set_current_registry(None)
        for module, attr, original in reversed(saved):
            setattr(module, attr, original)
        _track_guard.release()
