"""Prometheus metrics (extra ``metrics``: prometheus-client).

Without prometheus-client :data:`ENABLED` is False and every function here returns at once, so
an uninstrumented deployment pays one test per batch. Metrics are per process (Prometheus
scrapes processes), so they live in this module's :data:`REGISTRY`, not the default one: an
app's own metrics never collide with ours, and two DripDrop instances in one process share
series told apart by the ``schema`` label.

The worker observes per batch, never per row beyond a dict increment: outcomes are tallied
while a batch is counted and added once per (outcome, channel, provider); the lag of a whole
claim goes into :class:`BatchHistogram` with one lock and one bisect per bucket.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    import prometheus_client as prom
    from prometheus_client.core import HistogramMetricFamily
except ImportError:  # the `metrics` extra is not installed: everything below is a no-op
    prom = None

ENABLED = prom is not None

#: Seconds: from a loopback webhook (ms) to a slow provider (tens of s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Seconds behind schedule at claim: a healthy queue is well under a second; a stopped one, hours.
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
#: The due-now gauge counts at most this many rows (a capped index scan, never the whole queue).
DUE_COUNT_CAP = 100_000
#: Seconds between two refreshes of the due-now gauge, however often it is scraped.
DUE_REFRESH_SECONDS = 15.0


class BatchHistogram:
    """A Prometheus histogram fed a batch of values at a time: per batch one lock and one
    bisect per bucket, instead of a lock and a bucket walk per value (``Histogram.observe``)."""

    def __init__(self, name: str, documentation: str, buckets: Iterable[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = sorted(buckets)
        # schema → (cumulative count per bound, then +Inf), sum
        self._series: dict[str, tuple[list[int], float]] = {}
        self._lock = threading.Lock()

    def observe_many(self, schema: str, values: list[float]) -> None:
        if not values:
            return
        values = sorted(values)
        counts = [bisect.bisect_right(values, b) for b in self.bounds]
        total = sum(values)
        with self._lock:
            old, old_sum = self._series.get(schema, ([0] * (len(self.bounds) + 1), 0.0))
            new = [a + b for a, b in zip(old, [*counts, len(values)], strict=True)]
            self._series[schema] = (new, old_sum + total)

    def collect(self) -> Iterator[Any]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["schema"])
        with self._lock:
            series = dict(self._series)
        for schema, (counts, total) in series.items():
            buckets = [(_le(b), c) for b, c in zip(self.bounds, counts, strict=False)]
            buckets.append(("+Inf", counts[-1]))
            family.add_metric([schema], buckets, total)
        yield family

    def describe(self) -> list[Any]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=["schema"])]


def _le(bound: float) -> str:
    return str(float(bound))


class Metrics:
    """Every DripDrop metric, registered on :attr:`registry`."""

    def __init__(self) -> None:
        assert prom is not None
        r = self.registry = prom.CollectorRegistry()
        self.executions = prom.Counter(
            "dripdrop_executions",
            "Execution outcomes recorded (outcome: sent, skipped, failed, retried, deferred)",
            ["schema", "outcome", "channel", "provider"],
            registry=r,
        )
        self.claimed = prom.Counter(
            "dripdrop_claimed_executions", "Executions claimed by workers", ["schema"], registry=r
        )
        self.lease_recoveries = prom.Counter(
            "dripdrop_lease_recoveries",
            "Executions claimed again after their worker's lease ran out (a worker died or lost "
            "the database)",
            ["schema"],
            registry=r,
        )
        self.delivery_seconds = prom.Histogram(
            "dripdrop_delivery_seconds",
            "Time a provider took to accept a delivery (network providers)",
            ["schema", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.hook_seconds = prom.Histogram(
            "dripdrop_hook_seconds",
            "Time a hook call took (kind: http, python)",
            ["schema", "kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = BatchHistogram(
            "dripdrop_lag_seconds",
            "How late executions were claimed: claim time minus scheduled_for",
            LAG_BUCKETS,
        )
        r.register(self.lag)
        self.due_now = prom.Gauge(
            "dripdrop_due_now",
            f"Executions due and waiting to be claimed (counted up to {DUE_COUNT_CAP})",
            ["schema"],
            registry=r,
        )
        self.oldest_due = prom.Gauge(
            "dripdrop_oldest_due_seconds",
            "Age of the oldest execution that is due and not being sent (the schedule lag)",
            ["schema"],
            registry=r,
        )
        self.in_flight = prom.Gauge(
            "dripdrop_in_flight",
            "Executions this worker has claimed and not yet recorded",
            ["schema"],
            registry=r,
        )
        self.pruned = prom.Counter(
            "dripdrop_pruned_rows",
            "Rows removed by retention (table: step_executions, events, ...)",
            ["schema", "table"],
            registry=r,
        )
        self._due_refreshed: dict[str, float] = {}
        self._due_lock = threading.Lock()


_metrics: Metrics | None = Metrics() if ENABLED else None
#: The registry to expose (None without prometheus-client).
REGISTRY = _metrics.registry if _metrics is not None else None


def get() -> Metrics | None:
    """The metrics, or None when prometheus-client is not installed."""
    return _metrics


def record_outcomes(schema: str, tally: Counter[tuple[str, str, str]]) -> None:
    """Add a batch's outcomes, tallied by (outcome, channel, provider)."""
    if _metrics is None or not tally:
        return
    counter = _metrics.executions
    for (outcome, channel, provider), n in tally.items():
        counter.labels(schema, outcome, channel, provider).inc(n)


def record_claim(schema: str, now: float, scheduled: list[float], recovered: int) -> None:
    """A claim: how late each execution was (``now`` and ``scheduled`` as POSIX seconds) and
    how many came back from an expired lease."""
    if _metrics is None or not scheduled:
        return
    _metrics.claimed.labels(schema).inc(len(scheduled))
    _metrics.lag.observe_many(schema, [max(0.0, now - s) for s in scheduled])
    if recovered:
        _metrics.lease_recoveries.labels(schema).inc(recovered)


def observe_delivery(schema: str, provider: str, seconds: float) -> None:
    if _metrics is not None:
        # One histogram child per (schema, provider), looked up once: labels() takes a lock.
        child = _delivery_children.get((schema, provider))
        if child is None:
            child = _delivery_children.setdefault(
                (schema, provider), _metrics.delivery_seconds.labels(schema, provider)
            )
        child.observe(seconds)


_delivery_children: dict[tuple[str, str], Any] = {}


def observe_hook(schema: str, kind: str, seconds: float) -> None:
    if _metrics is not None:
        _metrics.hook_seconds.labels(schema, kind).observe(seconds)


def record_pruned(schema: str, table: str, n: int) -> None:
    if _metrics is not None and n:
        _metrics.pruned.labels(schema, table).inc(n)


def track_in_flight(schema: str, count: Callable[[], float]) -> None:
    """The in-flight gauge reads ``count()`` at each scrape (the worker's lanes)."""
    if _metrics is not None:
        _metrics.in_flight.labels(schema).set_function(count)


def refresh_due(rt: Any, *, force: bool = False) -> None:
    """Refresh the due-now and oldest-due gauges from one capped query on the due index, at
    most every DUE_REFRESH_SECONDS whatever the scrape rate (``force``: now)."""
    if _metrics is None:
        return
    with _metrics._due_lock:
        last = _metrics._due_refreshed.get(rt.schema, -DUE_REFRESH_SECONDS)
        if not force and time.monotonic() - last < DUE_REFRESH_SECONDS:
            return
        _metrics._due_refreshed[rt.schema] = time.monotonic()
    from dripdrop.ops.queue import due_summary

    with rt.engine.connect() as conn:
        due, oldest = due_summary(conn, rt.schema, rt.now(), cap=DUE_COUNT_CAP)
    _metrics.due_now.labels(rt.schema).set(due)
    _metrics.oldest_due.labels(rt.schema).set(oldest or 0.0)


def exposition() -> tuple[bytes, str]:
    """The text format of every metric, and its content type."""
    if _metrics is None:
        return b"# prometheus-client is not installed (pip install 'dripdrop-engine[metrics]')\n", (
            "text/plain; version=0.0.4; charset=utf-8"
        )
    return prom.generate_latest(_metrics.registry), prom.CONTENT_TYPE_LATEST


def serve(port: int, addr: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread (``dripdrop worker
    --metrics-port``); returns the server (``.shutdown()``)."""
    if _metrics is None:
        from dripdrop.errors import ConfigurationError

        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'dripdrop-engine[metrics]'"
        )
    server, _thread = prom.start_http_server(port, addr=addr, registry=_metrics.registry)
    return server
