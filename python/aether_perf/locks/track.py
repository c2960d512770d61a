"""track(): instrument the threading and asyncio locks a program creates while it is active.

It swaps the factories in ``threading`` (``Lock``, ``RLock``, ``Condition``, ``Semaphore``,
``BoundedSemaphore``) and ``asyncio`` (``Lock``) for the instrumented ones and puts them back on
exit. Locks made meanwhile stay instrumented after exit and keep counting into the tracker. Code
that bound a factory before (``from threading import Lock`` at import time) keeps the real one,
and ``isinstance(x, threading.Lock)`` is not meaningful while tracking (on 3.13 ``Lock`` is a type).
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


def _lock() -> InstrumentedLock:
    return InstrumentedLock()


def _rlock(*args: Any, **kwargs: Any) -> InstrumentedRLock:
    return InstrumentedRLock()


def _condition(lock: Any = None) -> InstrumentedCondition:
    return InstrumentedCondition(lock if lock is not None else InstrumentedRLock())


def _semaphore(value: int = 1) -> InstrumentedSemaphore:
    return InstrumentedSemaphore(value)


def _bounded(value: int = 1) -> InstrumentedBoundedSemaphore:
    return InstrumentedBoundedSemaphore(value)


def _asyncio_lock() -> InstrumentedAsyncioLock:
    return InstrumentedAsyncioLock()


_PATCHES: tuple[tuple[Any, str, Any], ...] = (
    (threading, "Lock", _lock),
    (threading, "RLock", _rlock),
    (threading, "Condition", _condition),
    (threading, "Semaphore", _semaphore),
    (threading, "BoundedSemaphore", _bounded),
    (asyncio, "Lock", _asyncio_lock),
    (asyncio.locks, "Lock", _asyncio_lock),
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
