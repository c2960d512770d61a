"""Load testing: scenarios of weighted transactions run by asyncio virtual users.

::

    from aether_perf.load import Scenario, transaction

    @transaction(weight=3)
    async def browse(client):
        await client.get("/items")

    scenario = Scenario("shop", users=200, ramp_up="30s", duration="2m", transactions=[browse])
    result = scenario.run(host="http://127.0.0.1:8080")     # LoadTestResult: per stage + sustained

Closed model (``users``) or open model (``arrival_rate``, latency corrected for coordinated
omission), ramp-up in stages, log-linear histograms merged exactly across ``workers`` processes,
k6-style thresholds, JSON and a self-contained HTML report, and ``engine="locust"`` to run the same
scenario as a locust user class. See ARCHITECTURE.md ("Load testing") for the design.
"""

from aether_perf.load.result import LoadTestResult, StageResult, TransactionStats, Window
from aether_perf.load.scenario import Scenario, Stage, Transaction, parse_rate, transaction
from aether_perf.load.thresholds import Threshold, ThresholdOutcome, check_thresholds, parse_threshold

__all__ = [
    "LoadTestResult",
    "Scenario",
    "Stage",
    "StageResult",
    "Threshold",
    "ThresholdOutcome",
    "Transaction",
    "TransactionStats",
    "Window",
    "check_thresholds",
    "parse_rate",
    "parse_threshold",
    "transaction",
]
