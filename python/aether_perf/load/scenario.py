"""Scenarios: what a load test runs (weighted transactions) and how hard (users or an arrival rate).

::

    @transaction(weight=3)
    async def browse(client):
        await client.get("/items")

    shop = Scenario("shop", users=200, ramp_up="30s", duration="2m", transactions=[browse, buy])
    shop = Scenario("shop", arrival_rate="500/s", ramp_up="30s", duration="2m", transactions=[...])

Two load models, as in k6:

- *closed* (``users=N``): N virtual users, each looping "pick a transaction by weight, run it, think".
  A slow server slows the users down, so it receives less load (coordinated omission); latencies
  are what each transaction took.
- *open* (``arrival_rate="500/s"``): transactions start on a fixed schedule whatever the server does,
  on a pool of at most ``max_users`` virtual users. Latency is measured from the *intended* start
  (corrected) and from the actual start (raw); starts that had to wait for a free user are counted
  as late, and those still waiting when the test ends as dropped.

The load ramps up in ``ramp_stages`` equal steps over ``ramp_up`` (1/k, 2/k, ... of the target),
then holds the full load for ``duration`` (the *sustained* stage). Every stage gets its own results.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast, overload

from aether_perf.errors import InvalidArgument
from aether_perf.units import parse_duration

if TYPE_CHECKING:
    from aether_perf.load.result import LoadTestResult
    from aether_perf.load.runner import ProgressCallback

__all__ = ["MAX_RATE", "MAX_USERS", "Scenario", "Stage", "Transaction", "parse_rate", "transaction"]

#: Beyond these, a scenario is refused as impossible rather than left to fail slowly.
MAX_USERS = 100_000
MAX_RATE = 1_000_000.0  # transactions per second

TransactionFunc = Callable[[Any], Awaitable[Any]] | Callable[[Any], Any]


class Transaction:
    """A named, weighted unit of work: ``func(client)``, a coroutine function or a plain callable.

    A plain (non-async) callable runs in a worker thread (``asyncio.to_thread``), so it does not stop
    the other virtual users; a transaction that raises counts as an error of that exception's kind.
    """

    __slots__ = ("func", "is_async", "name", "weight")

    def __init__(self, func: TransactionFunc, *, weight: float = 1, name: str | None = None) -> None:
        if not callable(func):
            raise InvalidArgument(f"a transaction must be callable, got {func!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < math.inf:
            raise InvalidArgument(f"a transaction's weight must be a positive number, got {weight!r}")
        self.func = func
        self.weight = float(weight)
        self.name = name or getattr(func, "__name__", None) or repr(func)
        self.is_async = inspect.iscoroutinefunction(func)

    def __call__(self, client: Any) -> Any:
        return self.func(client)

    def __repr__(self) -> str:
        return f"<Transaction {self.name} weight={self.weight:g}>"


@overload
def transaction(func: TransactionFunc, /) -> Transaction: ...
@overload
def transaction(
    *, weight: float = 1, name: str | None = None
) -> Callable[[TransactionFunc], Transaction]: ...


def transaction(
    func: TransactionFunc | None = None, /, *, weight: float = 1, name: str | None = None
) -> Transaction | Callable[[TransactionFunc], Transaction]:
    """Mark ``func`` as a transaction: ``@transaction`` or ``@transaction(weight=3, name="browse")``."""
    if func is not None:
        return Transaction(func, weight=weight, name=name)

    def decorate(f: TransactionFunc) -> Transaction:
        return Transaction(f, weight=weight, name=name)

    return decorate


_RATE = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$"
)
_PER = {None: 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PER.update({"h": 3600.0, "hour": 3600.0})


def parse_rate(value: str | float | int, *, name: str = "arrival_rate") -> float:
    """Transactions per second from ``"500/s"``, ``"30/m"``, ``"2/h"`` or a number (per second)."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{name} must be a rate such as '500/s', got {value!r}")
    if isinstance(value, (int, float)):
        rate = float(value)
    elif isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise InvalidArgument(f"{name} must be a rate such as '500/s', '30/m' or '2/h', got {value!r}")
        rate = float(match.group(1)) / _PER[match.group(2)]
    else:
        raise InvalidArgument(f"{name} must be a rate such as '500/s', got {value!r}")
    if not math.isfinite(rate) or rate <= 0:
        raise InvalidArgument(f"{name} must be greater than zero, got {value!r}")
    if rate > MAX_RATE:
        raise InvalidArgument(
            f"{name} {value!r} is impossible: more than {MAX_RATE:,.0f} transactions per second "
            "(use --workers or a distributed engine, and a lower rate per process)"
        )
    return rate


@dataclass(frozen=True)
class Stage:
    """One step of the load: ``users`` virtual users (closed) or ``rate`` starts per second (open)."""

    name: str
    kind: str  # "ramp" or "sustained"
    start: float  # seconds since the test start
    duration: float
    users: int | None = None
    rate: float | None = None

    @property
    def end(self) -> float:
        return self.start + self.duration


def _as_transactions(items: Sequence[Transaction | TransactionFunc]) -> tuple[Transaction, ...]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise InvalidArgument("a scenario needs a non-empty list of transactions")
    out = tuple(item if isinstance(item, Transaction) else Transaction(item) for item in items)
    names = [t.name for t in out]
    for t_name in names:
        if names.count(t_name) > 1:
            raise InvalidArgument(f"two transactions are named {t_name!r}; give one a name=")
    return out


def _think(value: float | str | tuple[float | str, float | str] | None) -> tuple[float, float]:
    if value is None or value == 0:
        return (0.0, 0.0)
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InvalidArgument(f"think_time must be a duration or (min, max), got {value!r}")
        low, high = (parse_duration(v, name="think_time") if v != 0 else 0.0 for v in value)
        if low > high:
            raise InvalidArgument(f"think_time's minimum is above its maximum: {value!r}")
        return (low, high)
    seconds = parse_duration(value, name="think_time")
    return (seconds, seconds)


@dataclass(frozen=True)
class Scenario:
    """A load test: transactions, a load model (``users`` or ``arrival_rate``), ramp-up and duration.

    ``think_time`` (closed model) is a pause after each transaction: a duration or ``(min, max)``
    for a uniformly random one. ``max_users`` caps the open model's concurrent virtual users
    (default: enough for one second of arrivals, at least 10). ``timeout`` bounds each request.
    ``host`` is the base URL the client talks to (``--host`` overrides it).
    """

    name: str
    users: int | None = None
    arrival_rate: float | str | None = None
    ramp_up: float | str = 0
    duration: float | str = "30s"
    transactions: Sequence[Transaction | TransactionFunc] = ()
    think_time: float | str | tuple[float | str, float | str] | None = None
    host: str | None = None
    ramp_stages: int = 3
    max_users: int | None = None
    timeout: float | str = "10s"
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the fields once, here
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgument(f"a scenario needs a name, got {self.name!r}")
        if (self.users is None) == (self.arrival_rate is None):
            raise InvalidArgument(
                f"scenario {self.name!r}: give either users=N (closed model) or arrival_rate='R/s' "
                "(open model), not both or neither"
            )
        if self.users is not None:
            if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 1:
                raise InvalidArgument(f"users must be a whole number >= 1, got {self.users!r}")
            if self.users > MAX_USERS:
                raise InvalidArgument(f"users={self.users} is more than one process can run ({MAX_USERS})")
        else:
            set_(self, "arrival_rate", parse_rate(self.arrival_rate))  # type: ignore[arg-type]
        set_(self, "duration", parse_duration(self.duration, name="duration"))
        ramp = self.ramp_up
        set_(self, "ramp_up", 0.0 if ramp in (0, "0", "0s") else parse_duration(ramp, name="ramp_up"))
        set_(self, "timeout", parse_duration(self.timeout, name="timeout"))
        set_(self, "transactions", _as_transactions(self.transactions))
        set_(self, "think_time", _think(self.think_time))
        if (
            isinstance(self.ramp_stages, bool)
            or not isinstance(self.ramp_stages, int)
            or self.ramp_stages < 1
        ):
            raise InvalidArgument(f"ramp_stages must be a whole number >= 1, got {self.ramp_stages!r}")
        if self.max_users is not None and (
            isinstance(self.max_users, bool) or not isinstance(self.max_users, int) or self.max_users < 1
        ):
            raise InvalidArgument(f"max_users must be a whole number >= 1, got {self.max_users!r}")
        if self.source is None:
            caller = inspect.stack(0)[2] if len(inspect.stack(0)) > 2 else None
            set_(self, "source", caller.filename if caller else None)

    # ---- derived -------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        """ "closed" (users) or "open" (arrival rate)."""
        return "closed" if self.users is not None else "open"

    @property
    def rate(self) -> float | None:
        """The open model's target arrival rate (per second), else None."""
        return float(self.arrival_rate) if self.arrival_rate is not None else None

    @property
    def seconds(self) -> tuple[float, float, float]:
        """(ramp_up, duration, timeout) in seconds (the fields, normalised by the constructor)."""
        return float(self.ramp_up), float(self.duration), float(self.timeout)

    @property
    def think_range(self) -> tuple[float, float]:
        """(min, max) think time in seconds."""
        return cast("tuple[float, float]", self.think_time)

    @property
    def transaction_list(self) -> tuple[Transaction, ...]:
        """The transactions, each a :class:`Transaction`."""
        return cast("tuple[Transaction, ...]", self.transactions)

    @property
    def pool_size(self) -> int:
        """How many virtual users the test may run at once."""
        if self.users is not None:
            return self.users
        if self.max_users is not None:
            return self.max_users
        return min(MAX_USERS, max(10, math.ceil(self.rate or 0)))

    def stages(self) -> list[Stage]:
        """The ramp-up steps (when ``ramp_up`` > 0) then the sustained stage."""
        out: list[Stage] = []
        (ramp, duration, _), steps, start = self.seconds, self.ramp_stages, 0.0
        if ramp > 0:
            for k in range(1, steps + 1):
                users = rate = None
                if self.users is not None:
                    users = max(1, round(self.users * k / steps))
                else:
                    rate = (self.rate or 0) * k / steps
                out.append(Stage(f"ramp {k}/{steps}", "ramp", start, ramp / steps, users, rate))
                start += ramp / steps
        out.append(Stage("sustained", "sustained", start, duration, self.users, self.rate))
        return out

    @property
    def total_duration(self) -> float:
        return self.seconds[0] + self.seconds[1]

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with fields changed (as the CLI's --users/--rate/--duration do).

        Setting ``users`` drops ``arrival_rate`` and the reverse, so an override switches model.
        """
        if changes.get("users") is not None:
            changes["arrival_rate"] = None
        if changes.get("arrival_rate") is not None:
            changes["users"] = None
        changes = {k: v for k, v in changes.items() if v is not None or k in ("users", "arrival_rate")}
        if "think_time" not in changes:  # stored normalised as (low, high)
            changes["think_time"] = self.think_time
        return replace(self, **changes)

    # ---- running -------------------------------------------------------------------------------
    def run(
        self,
        *,
        host: str | None = None,
        workers: int = 1,
        engine: str = "native",
        progress: ProgressCallback | None = None,
    ) -> LoadTestResult:
        """Run the test and return its :class:`~aether_perf.load.result.LoadTestResult`.

        ``workers`` > 1 runs it in that many processes (each with its share of the users or the rate)
        and merges their histograms exactly; ``engine="locust"`` runs it as a locust user class.
        """
        target = host or self.host
        if not target:
            raise InvalidArgument(f"scenario {self.name!r} has no host: give host='http://...'")
        if engine == "locust":
            from aether_perf.load.locust_engine import run_locust

            return run_locust(self, host=target, progress=progress)
        if engine != "native":
            raise InvalidArgument(f"engine must be 'native' or 'locust', got {engine!r}")
        if workers != 1:
            from aether_perf.load.workers import run_workers

            return run_workers(self, host=target, workers=workers, progress=progress)
        from aether_perf.load.runner import run

        return run(self, host=target, progress=progress)
