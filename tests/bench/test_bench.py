"""`verifier bench` end to end with one-second phases: every figure is there and the ratios follow
from them. Speed is measured, never asserted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from verifier.bench.report import ratios

pytestmark = [
    pytest.mark.bench,
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)"),
]


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    """One quick run of the whole bench, through the command line."""
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "bench", "--seconds", "1", "--rounds", "1", "--memory-scans", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "VERIFIER_STATE_DIR"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_every_figure_is_reported(result: dict[str, Any]) -> None:
    """The ceilings, the three phases with throughput and p50/p99, memory and scale-out are all there."""
    for name in ("empty_http_rps", "es256_verify_per_s", "redis_round_trips_per_s", "http_plus_redis_rps"):
        assert result["ceilings"][name] > 0, name
    for phase in ("cold", "warm", "paced"):
        figures = result[phase]
        assert figures["rps"] > 0, phase
        assert 0 < figures["latency_us"]["p50"] <= figures["latency_us"]["p99"], phase
        assert figures["wrk_cpu_cores"] >= 0, phase
        assert figures["service_cpu_cores"] > 0, phase
    assert result["paced"]["target_rps"] > 0
    memory = result["memory"]
    assert memory["cold_scans_cached"] > 0
    assert memory["redis_used_memory_after"] > memory["redis_used_memory_before"]
    assert memory["redis_bytes_per_scan"] > 0
    for phase in ("worker_rss_cold", "worker_rss_warm"):
        assert set(memory[phase]) == {"start_kib", "end_kib", "max_kib", "growth_within_kib"}
    assert result["load_generator"]["name"] == "wrk"
    assert result["rounds"] == 1
    assert result["cold"]["rps_rounds"] == [result["cold"]["rps"]]


def test_ratios_are_computed_from_the_figures(result: dict[str, Any]) -> None:
    """cold / (1/(1/a+1/b+1/c)) and warm / (1/(1/a+1/c)), recomputed here from the reported figures."""
    c = result["ceilings"]
    a, b, r = c["empty_http_rps"], c["es256_verify_per_s"], c["redis_round_trips_per_s"]
    assert result["ratios"] == ratios(result)
    assert result["ratios"]["cold_over_ceiling"] == pytest.approx(
        result["cold"]["rps"] * (1 / a + 1 / b + 1 / r), abs=0.001
    )
    assert result["ratios"]["warm_over_ceiling"] == pytest.approx(result["warm"]["rps"] * (1 / a + 1 / r), abs=0.001)
    assert result["ratios"]["paced_p99_ms"] == pytest.approx(result["paced"]["latency_us"]["p99"] / 1000, abs=0.01)


def test_cold_scans_are_new_tokens_and_warm_scans_come_from_the_cache(result: dict[str, Any]) -> None:
    """Every cold scan is accepted and none is cached; warm re-scans are answered from the cache."""
    cold, warm = result["cold"], result["warm"]
    assert cold["exhausted"] == 0
    assert cold["errors"]["status"] == warm["errors"]["status"] == 0
    assert cold["service"]["cached"] == 0
    # wrk counts the answers back before it stops; the service also decides those still in flight.
    assert cold["requests"] <= cold["service"]["accepted"] <= cold["requests"] + cold["connections"]
    assert cold["service"]["rejected"] == 0
    assert warm["service"]["cached"] >= warm["requests"] - 1


def test_two_workers_share_one_port(result: dict[str, Any]) -> None:
    """`verifier serve --workers 2` on one port: both processes answer scans."""
    scale = result["scale_out"]
    assert scale["workers"] == 2
    assert scale["non_2xx"] == 0
    assert scale["every_worker_served"]
