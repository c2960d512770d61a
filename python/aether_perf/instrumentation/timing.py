"""The instrumentation API: ``@instrument``, ``profile_scope`` and ``record_duration``.

Each timed call adds its duration (``time.monotonic_ns()`` before and after, the clock spans and
profiles use) to the statistics of its name (:mod:`aether_perf.instrumentation.metrics`) and, when
a trace is active, records a span (:mod:`aether_perf.instrumentation.tracing`).

What is timed:

- a function or method: the call, until it returns or raises (the exception propagates);
- a coroutine function (``async def``): the whole ``await``, from the coroutine's first step to its
  result, suspensions included; one span covers it, on the task's track;
- a generator function: the time spent inside the generator, summed over its resumptions
  (``next``/``send``/``throw``/``close``), recorded once when it finishes (exhausted, raised, or
  closed, which garbage collection of an unfinished generator also does); a generator never
  started records nothing. With a trace, each resumption is a span, so the spans nest wherever
  the consumer resumes it;
- an async generator function: the same with each ``__anext__``/``asend``/``athrow`` awaited;
- ``with profile_scope(name):`` (or ``async with``): the block.

The hot path (no trace active) reads one attribute to learn that no trace is active, reads the
clock twice, finds the thread's accumulator in a ``threading.local`` and updates it in place:
no lock, no allocation beyond the integers. ``bench/instrumentation_overhead.py`` measures it.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from aether_perf.errors import InvalidArgument
from aether_perf.instrumentation.metrics import METRICS, Accumulator, Metric, get_metric
from aether_perf.instrumentation.tracing import STATE, Position, SpanBuffer, begin_span, position

__all__ = ["instrument", "profile_scope", "record_duration"]

P = ParamSpec("P")
R = TypeVar("R")

_now = time.monotonic_ns

#: Span categories, by what was timed.
CATEGORY_FUNCTION = "function"
CATEGORY_COROUTINE = "coroutine"
CATEGORY_GENERATOR = "generator"
CATEGORY_SCOPE = "scope"


def _end_span(buffer: SpanBuffer, here: Position, name: str, category: str, t0: int, t1: int) -> None:
    """End a span that is not counted in the statistics by itself (a generator's resumption)."""
    position.set(here)
    records = buffer.records
    if len(records) < buffer.max_spans:
        records.append((name, category, here[2], here[3], here[4], t0, t1))
    else:
        buffer.dropped += 1


def _end_timed_span(
    buffer: SpanBuffer, here: Position, name: str, category: str, t0: int, t1: int, metric: Metric
) -> None:
    """End a span and add its duration to ``metric``: the traced path's one call after the work
    (the buffer append and Accumulator.add inlined)."""
    position.set(here)
    records = buffer.records
    if len(records) < buffer.max_spans:
        records.append((name, category, here[2], here[3], here[4], t0, t1))
    else:
        buffer.dropped += 1
    ns = t1 - t0
    try:
        acc: Accumulator = metric.local.acc
    except AttributeError:
        acc = metric.accumulator()
    acc.count += 1
    acc.total += ns
    if ns < acc.min:
        acc.min = ns
    if ns > acc.max:
        acc.max = ns
    shift = ns.bit_length() - 8
    index = ns if shift <= 0 else (shift << 7) + (ns >> shift)
    counts = acc.counts
    try:
        counts[index] += 1
    except KeyError:
        counts[index] = 1


# -- @instrument ---------------------------------------------------------------------------------


def _wrap_function(func: Callable[P, R], name: str, metric: Metric) -> Callable[P, R]:
    state = STATE
    now = _now

    def traced(buffer: SpanBuffer, args: Any, kwargs: Any) -> R:
        here = begin_span(buffer)
        t0 = now()
        try:
            return func(*args, **kwargs)
        finally:
            _end_timed_span(buffer, here, name, CATEGORY_FUNCTION, t0, now(), metric)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        buffer = state.buffer
        if buffer is not None:
            return traced(buffer, args, kwargs)
        t0 = now()
        try:
            return func(*args, **kwargs)
        finally:
            ns = now() - t0
            # Accumulator.add, inlined: a method call would cost about a tenth of the whole.
            try:
                acc: Accumulator = metric.local.acc
            except AttributeError:
                acc = metric.accumulator()
            acc.count += 1
            acc.total += ns
            if ns < acc.min:
                acc.min = ns
            if ns > acc.max:
                acc.max = ns
            shift = ns.bit_length() - 8
            index = ns if shift <= 0 else (shift << 7) + (ns >> shift)
            counts = acc.counts
            try:
                counts[index] += 1
            except KeyError:
                counts[index] = 1

    return wrapper


def _wrap_coroutine_function(func: Callable[..., Any], name: str, metric: Metric) -> Callable[..., Any]:
    state = STATE
    now = _now

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        buffer = state.buffer
        if buffer is None:
            t0 = now()
            try:
                return await func(*args, **kwargs)
            finally:
                metric.add(now() - t0)
        here = begin_span(buffer)
        t0 = now()
        try:
            return await func(*args, **kwargs)
        finally:
            _end_timed_span(buffer, here, name, CATEGORY_COROUTINE, t0, now(), metric)

    return wrapper


_SEND, _THROW, _CLOSE = 0, 1, 2


def _wrap_generator_function(func: Callable[..., Any], name: str, metric: Metric) -> Callable[..., Any]:
    state = STATE
    now = _now

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen: Generator[Any, Any, Any] = func(*args, **kwargs)
        inside = 0
        action: int = _SEND
        argument: Any = None
        try:
            while True:
                buffer = state.buffer
                here = begin_span(buffer) if buffer is not None else None
                t0 = now()
                try:
                    if action == _SEND:
                        value = gen.send(argument)
                    elif action == _THROW:
                        value = gen.throw(argument)
                    else:
                        gen.close()
                        raise argument
                except StopIteration as stop:
                    return stop.value
                finally:
                    t1 = now()
                    inside += t1 - t0
                    if here is not None:
                        assert buffer is not None
                        _end_span(buffer, here, name, CATEGORY_GENERATOR, t0, t1)
                try:
                    argument = yield value
                    action = _SEND
                except GeneratorExit as exc:
                    action, argument = _CLOSE, exc
                except BaseException as exc:
                    action, argument = _THROW, exc
        finally:
            metric.add(inside)

    return wrapper


def _wrap_async_generator_function(func: Callable[..., Any], name: str, metric: Metric) -> Callable[..., Any]:
    state = STATE
    now = _now

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen: AsyncGenerator[Any, Any] = func(*args, **kwargs)
        inside = 0
        action: int = _SEND
        argument: Any = None
        try:
            while True:
                buffer = state.buffer
                here = begin_span(buffer) if buffer is not None else None
                t0 = now()
                try:
                    if action == _SEND:
                        value = await agen.asend(argument)
                    elif action == _THROW:
                        value = await agen.athrow(argument)
                    else:
                        await agen.aclose()
                        raise argument
                except StopAsyncIteration:
                    return
                finally:
                    t1 = now()
                    inside += t1 - t0
                    if here is not None:
                        assert buffer is not None
                        _end_span(buffer, here, name, CATEGORY_GENERATOR, t0, t1)
                try:
                    argument = yield value
                    action = _SEND
                except GeneratorExit as exc:
                    action, argument = _CLOSE, exc
                except BaseException as exc:
                    action, argument = _THROW, exc
        finally:
            metric.add(inside)

    return wrapper


def _default_name(func: Callable[..., Any]) -> str:
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not isinstance(qualname, str):  # a callable object: name it after its class
        qualname = type(func).__qualname__
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _instrument(func: Any, name: str | None) -> Any:
    if isinstance(func, (staticmethod, classmethod)):
        return type(func)(_instrument(func.__func__, name))
    if not callable(func):
        raise InvalidArgument(f"instrument() needs a function, got {type(func).__name__}")
    if name is None:
        name = _default_name(func)
    metric = get_metric(name)
    if inspect.iscoroutinefunction(func):
        return _wrap_coroutine_function(func, name, metric)
    if inspect.isasyncgenfunction(func):
        return _wrap_async_generator_function(func, name, metric)
    if inspect.isgeneratorfunction(func):
        return _wrap_generator_function(func, name, metric)
    return _wrap_function(func, name, metric)


@overload
def instrument(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def instrument(*, name: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def instrument(
    func: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Time every call of a function: ``@instrument`` or ``@instrument(name="db.query")``.

    Works on functions, methods (also under ``staticmethod``/``classmethod``), coroutine
    functions, generator and async generator functions; see the module doc for what is timed.
    The default name is ``module.qualname``. The wrapper keeps the function's name, docstring and
    kind (``inspect.iscoroutinefunction`` and the like still answer the same).
    """
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidArgument(f"instrument(name=...) must be a non-empty string, got {name!r}")
    if func is None:

        def decorate(target: Callable[P, R]) -> Callable[P, R]:
            return cast(Callable[P, R], _instrument(target, name))

        return decorate
    return cast(Callable[P, R], _instrument(func, name))


# -- profile_scope -------------------------------------------------------------------------------


class profile_scope:  # lower case: it is used like a function, `with profile_scope("name"):`
    """Time a block: ``with profile_scope("parse"):`` (or ``async with``).

    Each ``profile_scope(...)`` is one timing: make a new one for each block (they are cheap);
    after the block ``elapsed`` is its duration in seconds.
    """

    __slots__ = ("_buffer", "_here", "_metric", "_t0", "_t1", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        metric = METRICS.get(name)
        self._metric = metric if metric is not None else get_metric(name)

    def __enter__(self) -> profile_scope:
        buffer = STATE.buffer
        self._buffer = buffer
        if buffer is not None:
            self._here = begin_span(buffer)
        self._t0 = _now()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        t1 = self._t1 = _now()
        buffer = self._buffer
        if buffer is not None:
            _end_timed_span(buffer, self._here, self.name, CATEGORY_SCOPE, self._t0, t1, self._metric)
            return
        ns = t1 - self._t0
        # Accumulator.add, inlined (see _wrap_function).
        metric = self._metric
        try:
            acc: Accumulator = metric.local.acc
        except AttributeError:
            acc = metric.accumulator()
        acc.count += 1
        acc.total += ns
        if ns < acc.min:
            acc.min = ns
        if ns > acc.max:
            acc.max = ns
        shift = ns.bit_length() - 8
        index = ns if shift <= 0 else (shift << 7) + (ns >> shift)
        counts = acc.counts
        try:
            counts[index] += 1
        except KeyError:
            counts[index] = 1

    async def __aenter__(self) -> profile_scope:
        return self.__enter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, value, tb)

    @property
    def elapsed(self) -> float:
        """The block's duration in seconds once it ended, ``nan`` before."""
        try:
            return (self._t1 - self._t0) / 1e9
        except AttributeError:  # not ended yet (__slots__ attributes are unset until assigned)
            return math.nan

    def __repr__(self) -> str:
        return f"<profile_scope {self.name!r}>"


# -- record_duration -----------------------------------------------------------------------------


def record_duration(name: str, seconds: float | str) -> None:
    """Add a duration measured elsewhere to ``name``'s statistics (it makes no span).

    ``seconds`` is a number of seconds (>= 0) or a string with a unit (``"12ms"``, ``"250us"``).
    """
    if isinstance(seconds, str):
        from aether_perf.units import parse_duration

        value = parse_duration(seconds, name=f"the duration of {name!r}")
    elif isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidArgument(f"the duration of {name!r} must be a number of seconds, got {seconds!r}")
    else:
        value = float(seconds)
        if not math.isfinite(value) or value < 0:
            raise InvalidArgument(
                f"the duration of {name!r} must be a finite number of seconds >= 0, got {seconds!r}"
            )
    get_metric(name).add(round(value * 1e9))
