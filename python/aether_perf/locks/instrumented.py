"""Drop-in instrumented locks: Lock, RLock, Condition, Semaphore, BoundedSemaphore, asyncio.Lock.

The uncontended path is what every program pays, so it is kept short: a non-blocking acquire of the
real lock first, a counter and one ``perf_counter_ns()`` for the hold time; no stack is captured.
Only when that first try fails is the blocking acquire timed and, if it was among the longest
waits, the waiting stack kept. Behaviour is the real lock's: re-entrancy, timeouts, ``with``,
``acquire(blocking=False)``, release from another thread (Lock), and the private
``_is_owned``/``_release_save``/``_acquire_restore`` protocol that ``threading.Condition`` uses.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from time import perf_counter_ns
from types import TracebackType
from typing import Any

from aether_perf.locks.stats import DEFAULT_REGISTRY, LockCounters, LockRegistry, creation_site

__all__ = [
    "InstrumentedAsyncioLock",
    "InstrumentedBoundedSemaphore",
    "InstrumentedCondition",
    "InstrumentedLock",
    "InstrumentedRLock",
    "InstrumentedSemaphore",
    "current_registry",
    "set_current_registry",
]

_get_ident = threading.get_ident
_real_lock = threading._allocate_lock  # type: ignore[attr-defined]
_real_rlock: Any = threading._CRLock or threading._PyRLock  # type: ignore[attr-defined]
_RealSemaphore = threading.Semaphore
_RealBoundedSemaphore = threading.BoundedSemaphore
_RealCondition = threading.Condition
_RealAsyncioLock = asyncio.Lock

_registry: list[LockRegistry] = [DEFAULT_REGISTRY]


def current_registry() -> LockRegistry:
    """Where locks created now register (the innermost active ``track()``, else the default)."""
    return _registry[-1]


def set_current_registry(registry: LockRegistry | None) -> None:
    """Push ``registry`` (or pop the last one with None); used by :func:`track`."""
    if registry is None:
        if len(_registry) > 1:
            _registry.pop()
    else:
        _registry.append(registry)


def _module_file(module: Any) -> str:
    return str(getattr(module, "__file__", "") or "")


def _skip_files() -> frozenset[str]:
    import asyncio.locks
    import asyncio.queues
    import queue

    files = {
        _module_file(threading),
        _module_file(queue),
        _module_file(asyncio.locks),
        _module_file(asyncio.queues),
        __file__,
        os.path.join(os.path.dirname(__file__), "track.py"),
    }
    try:
        import concurrent.futures._base as futures_base
        import concurrent.futures.thread as futures_thread

        files |= {_module_file(futures_base), _module_file(futures_thread)}
    except ImportError:  # pragma: no cover
        pass
    return frozenset(f for f in files if f)


#: Library files that create locks on their users' behalf: the creation site is their caller.
SKIP_FILES = _skip_files()


def _counters(name: str | None, kind: str, registry: LockRegistry | None) -> LockCounters:
    site = creation_site(3, SKIP_FILES)
    if name is None:
        name = f"{site.file}:{site.line}" if site is not None else f"<unknown {kind}>"
    counters = LockCounters(name, kind, site)
    (registry or current_registry()).register(counters)
    return counters


class InstrumentedLock:
    """A ``threading.Lock`` that counts acquisitions, contended waits and hold times.

    ``name`` defaults to the creation site (``file:line`` of the first caller outside threading,
    queue and asyncio); ``registry`` defaults to the active :func:`track` or the default registry.
    """

    __slots__ = ("__weakref__", "_acquired_at", "_counters", "_lock")

    def __init__(self, name: str | None = None, *, registry: LockRegistry | None = None) -> None:
        self._lock = _real_lock()
        self._counters = _counters(name, "Lock", registry)
        self._acquired_at = 0

    @property
    def name(self) -> str:
        return self._counters.name

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        lock = self._lock
        if lock.acquire(False):
            self._counters.acquisitions += 1
            self._acquired_at = perf_counter_ns()
            return True
        if not blocking:
            if timeout != -1:
                return bool(lock.acquire(blocking, timeout))  # raises the real ValueError
            self._counters.failed += 1  # approximate: not under the lock
            return False
        start = perf_counter_ns()
        if not lock.acquire(True, timeout):
            self._counters.failed += 1
            return False
        now = perf_counter_ns()
        counters = self._counters
        counters.acquisitions += 1
        counters.waited(now - start, sys._getframe(1))
        self._acquired_at = perf_counter_ns()
        return True

    def release(self) -> None:
        held = perf_counter_ns() - self._acquired_at
        lock = self._lock
        if lock.locked():
            self._counters.held(held)
        lock.release()

    def __enter__(self) -> bool:
        if self._lock.acquire(False):
            self._counters.acquisitions += 1
            self._acquired_at = perf_counter_ns()
            return True
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        held = perf_counter_ns() - self._acquired_at
        counters = self._counters
        counters.holds += 1
        counters.hold_total_ns += held
        if held > counters.hold_max_ns:
            counters.hold_max_ns = held
        self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    # threading.Condition's protocol, so a Condition over this lock neither misreads ownership nor
    # counts its probes as acquisitions.
    def _is_owned(self) -> bool:
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _release_save(self) -> None:
        self.release()

    def _acquire_restore(self, state: object) -> None:
        self.acquire()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<{state} InstrumentedLock {self.name!r}>"


class InstrumentedRLock:
    """A ``threading.RLock``: the outermost acquire is counted and timed, re-entries are free."""

    __slots__ = ("__weakref__", "_acquired_at", "_count", "_counters", "_lock", "_owner")

    def __init__(self, name: str | None = None, *, registry: LockRegistry | None = None) -> None:
        self._lock = _real_lock()
        self._owner: int | None = None
        self._count = 0
        self._counters = _counters(name, "RLock", registry)
        self._acquired_at = 0

    @property
    def name(self) -> str:
        return self._counters.name

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            return True
        lock = self._lock
        if lock.acquire(False):
            self._owner, self._count = me, 1
            self._counters.acquisitions += 1
            self._acquired_at = perf_counter_ns()
            return True
        if not blocking:
            if timeout != -1:
                return bool(lock.acquire(blocking, timeout))
            self._counters.failed += 1
            return False
        start = perf_counter_ns()
        if not lock.acquire(True, timeout):
            self._counters.failed += 1
            return False
        now = perf_counter_ns()
        self._owner, self._count = me, 1
        counters = self._counters
        counters.acquisitions += 1
        counters.waited(now - start, sys._getframe(1))
        self._acquired_at = perf_counter_ns()
        return True

    def __enter__(self) -> bool:
        me = _get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if self._lock.acquire(False):
            self._owner, self._count = me, 1
            self._counters.acquisitions += 1
            self._acquired_at = perf_counter_ns()
            return True
        return self.acquire()

    def release(self) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            self._counters.held(perf_counter_ns() - self._acquired_at)
            self._lock.release()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if self._count == 0:
            self._owner = None
            held = perf_counter_ns() - self._acquired_at
            counters = self._counters
            counters.holds += 1
            counters.hold_total_ns += held
            if held > counters.hold_max_ns:
                counters.hold_max_ns = held
            self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    def _is_owned(self) -> bool:
        return self._owner == _get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        if self._count == 0:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count, self._owner = 0, None
        self._counters.held(perf_counter_ns() - self._acquired_at)
        self._lock.release()
        return state

    def _acquire_restore(self, state: tuple[int, int | None]) -> None:
        if not self._lock.acquire(False):
            start = perf_counter_ns()
            self._lock.acquire()
            self._counters.waited(perf_counter_ns() - start, sys._getframe(1))
        self._counters.acquisitions += 1
        self._count, self._owner = state
        self._acquired_at = perf_counter_ns()

    def _recursion_count(self) -> int:
        return self._count if self._owner == _get_ident() else 0

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()
        self._owner, self._count = None, 0

    def __repr__(self) -> str:
        return f"<InstrumentedRLock {self.name!r} owner={self._owner} count={self._count}>"


class InstrumentedCondition(_RealCondition):
    """A ``threading.Condition`` whose lock (an :class:`InstrumentedRLock` unless given) is counted."""

    def __init__(
        self,
        lock: Any = None,
        *,
        name: str | None = None,
        registry: LockRegistry | None = None,
    ) -> None:
        if lock is None:
            lock = InstrumentedRLock(name, registry=registry)
        super().__init__(lock)


class InstrumentedSemaphore:
    """A ``threading.Semaphore`` that counts acquisitions and the waits for a free slot."""

    _kind = "Semaphore"

    def __init__(
        self, value: int = 1, *, name: str | None = None, registry: LockRegistry | None = None
    ) -> None:
        self._sem = self._make(value)
        self._counters = _counters(name, self._kind, registry)
        self._guard = _real_lock()  # several holders: the counters need a lock of their own

    @staticmethod
    def _make(value: int) -> Any:
        return _RealSemaphore(value)

    @property
    def name(self) -> str:
        return self._counters.name

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        sem = self._sem
        if sem.acquire(False):
            with self._guard:
                self._counters.acquisitions += 1
            return True
        if not blocking:
            if timeout is not None:
                return bool(sem.acquire(blocking, timeout))  # raises the real ValueError
            with self._guard:
                self._counters.failed += 1
            return False
        start = perf_counter_ns()
        ok = bool(sem.acquire(True, timeout))
        wait = perf_counter_ns() - start
        with self._guard:
            if ok:
                self._counters.acquisitions += 1
                self._counters.waited(wait, sys._getframe(1))
            else:
                self._counters.failed += 1
        return ok

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        self._sem.release(n)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._sem.release()

    @property
    def _value(self) -> int:
        return int(self._sem._value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} value={self._value}>"


class InstrumentedBoundedSemaphore(InstrumentedSemaphore):
    """A ``threading.BoundedSemaphore`` (releasing too often raises ValueError), instrumented."""

    _kind = "BoundedSemaphore"

    @staticmethod
    def _make(value: int) -> Any:
        return _RealBoundedSemaphore(value)


class InstrumentedAsyncioLock(_RealAsyncioLock):
    """An ``asyncio.Lock`` that counts acquisitions, waits (time to get the lock) and hold times.

    All its bookkeeping runs on the event loop's thread, so the counters need no lock.
    """

    def __init__(self, *, name: str | None = None, registry: LockRegistry | None = None) -> None:
        super().__init__()
        self._aether_counters = _counters(name, "asyncio.Lock", registry)
        self._aether_acquired_at = 0

    @property
    def name(self) -> str:
        return self._aether_counters.name

    async def acquire(self) -> bool:  # type: ignore[override]  # same signature, typed differently
        if not self.locked():
            result = await super().acquire()
            self._aether_counters.acquisitions += 1
            self._aether_acquired_at = perf_counter_ns()
            return result
        start = perf_counter_ns()
        result = await super().acquire()
        now = perf_counter_ns()
        counters = self._aether_counters
        counters.acquisitions += 1
        counters.waited(now - start, sys._getframe(1))
        self._aether_acquired_at = now
        return result

    def release(self) -> None:
        if self.locked():
            self._aether_counters.held(perf_counter_ns() - self._aether_acquired_at)
        super().release()
