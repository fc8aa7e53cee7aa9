"""`verifier bench` end to end with one-second phases: every field is there with its type, and the
figures add up (ratios, medians, counts of scans and tokens). Speed is measured, never asserted.

Each cold phase gets a fixed surplus of fresh tokens (``COLD_TOKENS``), not a number scaled by how
fast this machine seems: a one-second phase cannot use them all on any machine this runs on, and if
one did, the bench would run the phase again with more and report it (``tokens.ran_out``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from verifier.bench import report
from verifier.bench.run import RERUNS

pytestmark = [
    pytest.mark.bench,
    pytest.mark.redis,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"),
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
]

COLD_TOKENS = 10_000  # for a one-second cold phase; one worker here decides some 3,000 a second

_LATENCY = {"p50": int, "p90": int, "p99": int, "p999": int, "max": int, "mean": float}
_ERRORS = dict.fromkeys(("connect", "read", "write", "status", "timeout"), int)
_SERVICE = dict.fromkeys(("accepted", "rejected", "cached"), int)
_WRK = {"requests": int, "duration_us": int, "bytes": int, "exhausted": int, "errors": _ERRORS,
        "latency_us": _LATENCY, "ok": int, "rps": float, "wrk_cpu_cores": float, "connections": int,
        "threads": int}  # fmt: skip
_PHASE = {
    **_WRK,
    "service": _SERVICE,
    "service_cpu_cores": float,
    "redis_cpu_cores": float,
    "audit_writer_cpu_cores": float,
}
_RSS = dict.fromkeys(("start_kib", "end_kib", "max_kib", "growth_within_kib"), int)
SHAPE: dict[str, Any] = {
    "seconds": float,
    "rounds": int,
    "cpus": int,
    "event_loop": str,
    "alg": str,
    "load_generator": {"name": str, "path": str, "threads": int, "connections": int, "requests": str},
    "ceilings": {
        "empty_http_rps": float,
        "verify_per_s": float,
        "redis_round_trips_per_s": float,
        "http_plus_redis_rps": float,
        "rounds": {"a": [float], "b": [float], "c": [float]},
        "empty_http_wrk": {**_WRK, "rps_rounds": [float]},
    },
    "cold": {**_PHASE, "tokens": int, "rps_rounds": [float]},
    "warm": {**_PHASE, "rps_rounds": [float]},
    "paced": {**_PHASE, "tokens": int, "target_rps": float},
    "memory": {
        "redis_used_memory_before": int,
        "redis_used_memory_after": int,
        "cold_scans_cached": int,
        "redis_bytes_per_scan": float,
        "worker_rss_cold": _RSS,
        "worker_rss_warm": _RSS,
    },
    "tokens": {"minted": int, "cold": [int], "paced": int, "memory_fill": int, "reruns": int, "ran_out": [str]},
    "scale_out": {
        "workers": int,
        "rps": float,
        "non_2xx": int,
        "worker_cpu_seconds": [float],
        "every_worker_served": bool,
    },
    "ratios": {
        "cold_composite_ceiling_rps": float,
        "warm_composite_ceiling_rps": float,
        "cold_over_ceiling": float,
        "warm_over_ceiling": float,
        "empty_handler_over_cold": float,
        "empty_handler_over_warm": float,
        "paced_p99_ms": float,
        "cold_target_met": bool,
        "warm_target_met": bool,
    },
    "p99_target_ms": float,
    "algorithms": {
        alg: {
            "verify_per_s": float,
            "verify_rounds": [float],
            "cold_rps": float,
            "cold_rps_rounds": [float],
            "cold_p50_ms": float,
            "cold_p99_ms": float,
            "service_cpu_us_per_cold_scan": float,
            "cold_composite_ceiling_rps": float,
            "cold_over_ceiling": float,
            "service": _SERVICE,
            "tokens": [int],
        }
        for alg in ("ES256", "SM2")
    },
}


def _mismatches(value: Any, shape: Any, where: str = "result") -> list[str]:
    """Where ``value`` differs from ``shape``: a dict of exactly these keys, a list of items of one
    shape, or a type (an int passes for a float: JSON writes 2.0 as 2.0 but a whole rate may be 2)."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        wrong = [f"{where}: keys {sorted(set(value) ^ set(shape))} differ"] if set(value) != set(shape) else []
        return wrong + [m for k in shape.keys() & value.keys() for m in _mismatches(value[k], shape[k], f"{where}.{k}")]
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [m for i, item in enumerate(value) for m in _mismatches(item, shape[0], f"{where}[{i}]")]
    allowed = (int, float) if shape is float else shape
    if isinstance(value, bool) is not (shape is bool) or not isinstance(value, allowed):
        return [f"{where}: {value!r} is not {shape.__name__}"]
    return []


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    """One quick run of the whole bench, through the command line."""
    argv = ["bench", "--seconds", "1", "--rounds", "1", "--memory-scans", "0", "--cold-tokens", str(COLD_TOKENS)]
    argv += ["--alg", "ES256", "--alg", "SM2"]  # SM2's cold scans and ceiling beside ES256's
    done = subprocess.run(
        [sys.executable, "-m", "verifier", *argv, "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "VERIFIER_STATE_DIR"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_every_field_is_reported_with_its_type(result: dict[str, Any]) -> None:
    """The ceilings, the three phases, memory, tokens, scale-out and the ratios: each field present,
    none extra, each of its type."""
    assert _mismatches(result, SHAPE) == []
    assert result["load_generator"]["name"] == "wrk"
    assert (result["seconds"], result["rounds"]) == (1.0, 1)
    for name in ("ceilings", "cold", "warm", "paced"):
        phase = result["ceilings"]["empty_http_wrk"] if name == "ceilings" else result[name]
        lat = phase["latency_us"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], name


def test_every_phase_measured_something(result: dict[str, Any]) -> None:
    """Each ceiling and phase served requests and used CPU, and Redis grew with the cached scans: a run
    in which the service answered nothing is not a report (no speed is asserted, only that work was done)."""
    for name in ("empty_http_rps", "verify_per_s", "redis_round_trips_per_s", "http_plus_redis_rps"):
        assert result["ceilings"][name] > 0, name
    for phase in ("cold", "warm", "paced"):
        figures = result[phase]
        assert figures["requests"] > 0, phase
        assert figures["rps"] > 0, phase
        assert figures["latency_us"]["p50"] > 0, phase
        assert figures["service_cpu_cores"] > 0, phase
    assert result["paced"]["target_rps"] > 0
    memory = result["memory"]
    assert memory["cold_scans_cached"] > 0
    assert memory["redis_used_memory_after"] > memory["redis_used_memory_before"]


def test_ratios_are_the_figures_over_their_ceilings(result: dict[str, Any]) -> None:
    """cold / (1/(1/a+1/b+1/c)) and warm / (1/(1/a+1/c)), recomputed here from the reported figures."""
    c, q = result["ceilings"], result["ratios"]
    a, b, r = c["empty_http_rps"], c["verify_per_s"], c["redis_round_trips_per_s"]
    assert q == report.ratios(result)
    assert q["cold_composite_ceiling_rps"] == pytest.approx(1 / (1 / a + 1 / b + 1 / r), abs=0.05)
    assert q["warm_composite_ceiling_rps"] == pytest.approx(1 / (1 / a + 1 / r), abs=0.05)
    assert q["cold_over_ceiling"] == pytest.approx(result["cold"]["rps"] * (1 / a + 1 / b + 1 / r), abs=0.001)
    assert q["warm_over_ceiling"] == pytest.approx(result["warm"]["rps"] * (1 / a + 1 / r), abs=0.001)
    assert q["empty_handler_over_cold"] == pytest.approx(a / result["cold"]["rps"], abs=0.005)
    assert q["empty_handler_over_warm"] == pytest.approx(a / result["warm"]["rps"], abs=0.005)
    assert q["paced_p99_ms"] == pytest.approx(result["paced"]["latency_us"]["p99"] / 1000, abs=0.005)
    assert q["cold_target_met"] is (result["cold"]["rps"] / q["cold_composite_ceiling_rps"] >= report.TARGET_RATIO)
    assert result["paced"]["target_rps"] == round(max(1.0, result["cold"]["rps"] / 2), 1)


def test_each_figure_is_the_median_of_its_rounds(result: dict[str, Any]) -> None:
    """a, b, c, cold and warm: the reported figure is the median of the rounds reported beside it."""
    c = result["ceilings"]
    for name, key in (("a", "empty_http_rps"), ("b", "verify_per_s"), ("c", "redis_round_trips_per_s")):
        assert len(c["rounds"][name]) == result["rounds"], name
        assert c[key] == report.median(c["rounds"][name]), name
    assert c["empty_http_wrk"]["rps_rounds"] == c["rounds"]["a"]
    for phase in ("cold", "warm"):
        assert len(result[phase]["rps_rounds"]) == result["rounds"], phase
        assert result[phase]["rps"] == report.median(result[phase]["rps_rounds"]), phase


def test_throughput_is_requests_over_wrk_time(result: dict[str, Any]) -> None:
    """rps is wrk's answered requests over its own duration; ok is those answered 2xx."""
    for name in ("cold", "warm", "paced"):
        phase = result[name]
        assert phase["rps"] == round(phase["requests"] / (phase["duration_us"] / 1e6), 1), name
        assert phase["ok"] == phase["requests"] - phase["errors"]["status"], name


def test_cold_scans_are_new_tokens_and_warm_scans_re_scans(result: dict[str, Any]) -> None:
    """Every cold and paced request is a token nobody sent before (none ran out, none was cached);
    every warm request is a re-scan answered from the cache."""
    assert result["tokens"]["ran_out"] == []
    for name in ("cold", "paced"):
        phase = result[name]
        assert phase["exhausted"] == 0, name
        assert phase["errors"]["status"] == 0, name
        assert phase["service"]["cached"] == phase["service"]["rejected"] == 0, name
        # wrk counts the answers back before it stops; the service also decides those still in flight.
        assert phase["requests"] <= phase["service"]["accepted"] <= phase["requests"] + phase["connections"], name
        assert phase["service"]["accepted"] <= phase["tokens"], name
    warm = result["warm"]
    assert warm["errors"]["status"] == 0
    assert warm["service"]["cached"] == warm["service"]["accepted"] >= warm["requests"]
    assert warm["service"]["rejected"] == 0


def test_tokens_and_scans_add_up(result: dict[str, Any]) -> None:
    """The fixed surplus went to the cold phase, every token minted went to one phase, and the scans
    Redis holds are the new ones the cold and paced phases made."""
    tokens, memory = result["tokens"], result["memory"]
    assert result["cold"]["tokens"] in {COLD_TOKENS << k for k in range(RERUNS + 1)}  # doubled for a re-run
    assert tokens["cold"] == [result["cold"]["tokens"]]
    assert tokens["paced"] == result["paced"]["tokens"]
    assert tokens["memory_fill"] == 0
    if tokens["reruns"] == 0:  # one warm token, the two cold phases' (ES256 and SM2) and the paced phase's
        assert tokens["minted"] == 1 + 2 * COLD_TOKENS + tokens["paced"]
        new = [report.new_scans(result[name]["service"]) for name in ("cold", "paced")]
        assert memory["cold_scans_cached"] == sum(new) + report.new_scans(result["algorithms"]["SM2"]["service"])
    assert memory["redis_bytes_per_scan"] == report.bytes_per_scan(
        memory["redis_used_memory_before"], memory["redis_used_memory_after"], memory["cold_scans_cached"]
    )
    for kind in ("worker_rss_cold", "worker_rss_warm"):  # one phase of each kind
        rss = memory[kind]
        assert rss["growth_within_kib"] == rss["end_kib"] - rss["start_kib"], kind
        assert rss["max_kib"] >= max(rss["start_kib"], rss["end_kib"]), kind


def test_two_workers_share_one_port(result: dict[str, Any]) -> None:
    """`verifier serve --workers 2` on one port: both processes answer scans."""
    scale = result["scale_out"]
    assert scale["workers"] == len(scale["worker_cpu_seconds"]) == 2
    assert scale["non_2xx"] == 0
    assert scale["every_worker_served"]


def test_sm2_cold_scans_stand_beside_es256s(result: dict[str, Any]) -> None:
    """`--alg ES256 --alg SM2`: the run's own figures are ES256's, and each algorithm has its verification
    ceiling and cold scans measured in the same round; every SM2 token was verified and accepted, none
    rejected (so its figures are of the real work), and each ratio is its cold over its own ceiling."""
    assert result["alg"] == "ES256"
    c = result["ceilings"]
    es256, sm2 = result["algorithms"]["ES256"], result["algorithms"]["SM2"]
    assert es256["verify_per_s"] == c["verify_per_s"]
    assert es256["cold_rps"] == result["cold"]["rps"]
    for figures in (es256, sm2):
        assert figures["service"]["rejected"] == figures["service"]["cached"] == 0
        assert figures["service"]["accepted"] > 0
        assert len(figures["verify_rounds"]) == len(figures["cold_rps_rounds"]) == result["rounds"]
        ceiling, _ = report.composite_ceilings(
            c["empty_http_rps"], figures["verify_per_s"], c["redis_round_trips_per_s"]
        )
        assert figures["cold_composite_ceiling_rps"] == pytest.approx(ceiling, abs=0.05)
        assert figures["cold_over_ceiling"] == pytest.approx(figures["cold_rps"] / ceiling, abs=0.001)
    assert sm2["tokens"][-1] in {COLD_TOKENS << k for k in range(RERUNS + 1)}
