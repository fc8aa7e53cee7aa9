"""Prometheus metrics of the scan service, kept in-process and rendered as text format 0.0.4."""

from __future__ import annotations

import bisect
from collections import Counter as Tally
from dataclasses import dataclass, field

from verifier.errors import Finding

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    """Counts and a latency histogram; one per process."""

    scans: Tally[str] = field(default_factory=Tally)  # by decision
    cache_hits: int = 0
    store_errors: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    latency_sum: float = 0.0
    store_findings: Tally[str] = field(default_factory=Tally)  # failed store checks, by check
    store_safe: bool = False
    clock_offset: float | None = None

    def observe_store_check(self, findings: tuple[Finding, ...], clock_offset: float | None) -> None:
        """Count one check of the store and its findings."""
        for finding in findings:
            self.store_findings[finding.check] += 1
        self.store_safe = findings == ()
        self.clock_offset = clock_offset

    def observe(self, decision: str, cached: bool, seconds: float) -> None:
        """Count one decided scan."""
        self.scans[decision] += 1
        self.cache_hits += cached
        self.latency_buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def render(self) -> str:
        """The text exposition format."""
        lines = [
            "# HELP verifier_scans_total Scans decided, by decision.",
            "# TYPE verifier_scans_total counter",
            *(f'verifier_scans_total{{decision="{d}"}} {self.scans[d]}' for d in ("accepted", "rejected")),
            "# HELP verifier_cache_hits_total Re-scans answered from the result cache.",
            "# TYPE verifier_cache_hits_total counter",
            f"verifier_cache_hits_total {self.cache_hits}",
            "# HELP verifier_store_errors_total Scans answered 503 because the store could not be reached.",
            "# TYPE verifier_store_errors_total counter",
            f"verifier_store_errors_total {self.store_errors}",
            "# HELP verifier_store_safe 1 when the last check found the store able to keep one-time use.",
            "# TYPE verifier_store_safe gauge",
            f"verifier_store_safe {int(self.store_safe)}",
            "# HELP verifier_store_check_failures_total Store checks that failed, by check.",
            "# TYPE verifier_store_check_failures_total counter",
            *(
                f'verifier_store_check_failures_total{{check="{c}"}} {n}'
                for c, n in sorted(self.store_findings.items())
            ),
            "# HELP verifier_store_clock_offset_seconds The store's clock minus this instance's, at the last check.",
            "# TYPE verifier_store_clock_offset_seconds gauge",
            *([] if self.clock_offset is None else [f"verifier_store_clock_offset_seconds {self.clock_offset:.3f}"]),
            "# HELP verifier_scan_seconds Time to decide a scan.",
            "# TYPE verifier_scan_seconds histogram",
        ]
        running = 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.latency_buckets, strict=True):
            running += count
            lines.append(f'verifier_scan_seconds_bucket{{le="{bound}"}} {running}')
        lines += [f"verifier_scan_seconds_sum {self.latency_sum:.6f}", f"verifier_scan_seconds_count {running}"]
        return "\n".join(lines) + "\n"
