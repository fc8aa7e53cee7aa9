"""Prometheus metrics of the scan service, kept by ``prometheus_client``.

Each app has its own :class:`Metrics` in its own registry (the tests build many apps in one process).
Under ``verifier serve --workers N`` each worker is a process of its own, so each would count alone and a
scraper reaching one worker, then another, would see counters go back. There the master names a private
folder in ``PROMETHEUS_MULTIPROC_DIR`` before it starts the workers (:func:`shared_across_workers`):
``prometheus_client`` then keeps every worker's values in files there, and ``/metrics`` on any worker adds up
all of them — one figure per instance that only grows. Gauges say how they combine: the store is safe only
while every worker finds it so (``min``), the clock offset is the last one measured (``mostrecent``).

Labels come from fixed sets only (decisions, the catalogue's licence types and the counter registry, both
from ``data/``; ``-`` where a token named none the catalogue knows), never from a client's bytes.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from verifier.errors import Finding

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_FOLDER = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own name for the shared folder

# A *_created sample per series would double the page and, across workers, mean nothing.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (prometheus_client leaves it unannotated)


class Metrics:
    """What one instance counts; :attr:`exposed` is what ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        shared = os.environ.get(_FOLDER)
        if shared:  # every worker's files; this worker's values are among them
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=shared)  # type: ignore[no-untyped-call]
        else:
            self.exposed = self.registry
        into = self.registry
        self.scans = Counter(
            "verifier_scans",
            "Scans decided, by decision, licence type, issuing province and counter province.",
            ("decision", "licence_type", "issuing_province", "counter_province"),
            registry=into,
        )
        self.cache_hits = Counter("verifier_cache_hits", "Re-scans answered from the result cache.", registry=into)
        self.scan_seconds = Histogram("verifier_scan_seconds", "Time to decide a scan.", buckets=BUCKETS, registry=into)
        self.store_errors = Counter(
            "verifier_store_errors", "Scans answered 503 because the store could not be reached.", registry=into
        )
        self.trust_not_loaded = Counter(
            "verifier_trust_not_loaded", "Scans answered 503 because no trust list was loaded yet.", registry=into
        )
        self.rate_limited = Counter(
            "verifier_rate_limited", "Scans answered 429: the counter posted faster than its rate.", ("counter",),
            registry=into,
        )  # fmt: skip
        self.sign_in_failures = Counter(
            "verifier_sign_in_failures",
            "Requests refused for their API key: missing, unknown, duplicate, not_counter, not_admin, not_app.",
            ("reason",),
            registry=into,
        )
        self.connections_dropped = Counter(
            "verifier_connections_dropped",
            "Connections closed before a request: header_timeout (no complete head in time), over_capacity (503).",
            ("reason",),
            registry=into,
        )
        self.store_check_failures = Counter(
            "verifier_store_check_failures", "Store checks that failed, by check.", ("check",), registry=into
        )
        self.store_safe = Gauge(
            "verifier_store_safe",
            "1 when the last check found the store able to keep one-time use (on every worker).",
            registry=into,
            multiprocess_mode="min",
        )
        self.store_clock_offset = Gauge(
            "verifier_store_clock_offset_seconds",
            "The store's clock minus this instance's, at the last check (NaN before one succeeded).",
            registry=into,
            multiprocess_mode="mostrecent",
        )
        self.store_clock_offset.set(math.nan)
        self.audit_backlog = Gauge(
            "verifier_audit_backlog",
            "Audit events in the store not yet written to the audit trail (the last look of any worker).",
            registry=into,
            multiprocess_mode="mostrecent",
        )
        self.audit_written = Counter(
            "verifier_audit_written", "Audit events written to the audit trail by this instance.", registry=into
        )
        self.audit_write_failures = Counter(
            "verifier_audit_write_failures", "Failed attempts to write a batch to the audit trail.", registry=into
        )
        self._audit_seen = (0, 0)  # the writer's written and failures counts already added
        # One child per label set, looked up once: prometheus_client's labels() checks its arguments each call.
        self._scan_series: dict[tuple[str, str, str, str], Counter] = {}

    def observe(
        self,
        decision: str,
        cached: bool,
        seconds: float,
        *,
        licence_type: str,
        issuing_province: str,
        counter_province: str,
    ) -> None:
        """Count one decided scan."""
        key = (decision, licence_type, issuing_province, counter_province)
        series = self._scan_series.get(key)
        if series is None:
            series = self._scan_series[key] = self.scans.labels(*key)
        series.inc()
        if cached:
            self.cache_hits.inc()
        self.scan_seconds.observe(seconds)

    def observe_store_check(self, findings: tuple[Finding, ...], clock_offset: float | None) -> None:
        """Count one check of the store and its findings."""
        for finding in findings:
            self.store_check_failures.labels(finding.check).inc()
        self.store_safe.set(1 if findings == () else 0)
        if clock_offset is not None:
            self.store_clock_offset.set(clock_offset)

    def observe_audit(self, backlog: int | None, written: int, failures: int) -> None:
        """The audit backlog as just read (None: not readable now), and the writer's running totals."""
        if backlog is not None:
            self.audit_backlog.set(backlog)
        seen_written, seen_failures = self._audit_seen
        self.audit_written.inc(written - seen_written)
        self.audit_write_failures.inc(failures - seen_failures)
        self._audit_seen = (written, failures)


@contextlib.contextmanager
def shared_across_workers() -> Iterator[str]:
    """A private folder for the workers' metrics, named in ``PROMETHEUS_MULTIPROC_DIR`` while the block runs
    (worker processes started inside it inherit the name and count into it), then removed."""
    before = os.environ.get(_FOLDER)
    with tempfile.TemporaryDirectory(prefix="verifier-metrics-") as folder:
        os.environ[_FOLDER] = folder
        try:
            yield folder
        finally:
            if before is None:
                os.environ.pop(_FOLDER, None)
            else:
                os.environ[_FOLDER] = before


def metric_total(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` (``verifier_scans_total``, ``verifier_scan_seconds_count``) in a
    text exposition whose labels include ``labels``; 0 when there are none."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
