"""The arithmetic of ``verifier bench`` (verifier/bench/report.py) on figures made up here: no process
is started and nothing is measured."""

from __future__ import annotations

from typing import Any

import pytest

from verifier.bench import report


def _run(rps: float, **extra: Any) -> dict[str, Any]:
    """A wrk phase's figures with a given throughput."""
    return {
        "rps": rps,
        "requests": int(rps),
        "exhausted": 0,
        "wrk_cpu_cores": 0.1,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "latency_us": {"p50": 1000, "p90": 2000, "p99": 4000, "p999": 5000, "max": 6000, "mean": 1200.0},
        **extra,
    }


def _phase(rps: float, **extra: Any) -> dict[str, Any]:
    """A service phase: a wrk run with the service's counts and CPU use."""
    service = {"accepted": int(rps), "rejected": 0, "cached": 0}
    return _run(rps, service=service, service_cpu_cores=0.9, redis_cpu_cores=0.1, **extra)


def _result(*, ran_out: list[str] | None = None) -> dict[str, Any]:
    """A whole report whose ceilings are a = b = c = 3,000/s: composite ceilings 1,000 (cold) and 1,500 (warm)."""
    rss = {"start_kib": 100, "end_kib": 120, "max_kib": 130, "growth_within_kib": 20}
    result: dict[str, Any] = {
        "seconds": 1.0,
        "rounds": 1,
        "cpus": 2,
        "event_loop": "uvloop",
        "alg": "ES256",
        "load_generator": {"name": "wrk", "path": "/usr/bin/wrk", "threads": 2, "connections": 32, "requests": "…"},
        "ceilings": report.ceilings([_run(3000.0)], [3000.0], [3000.0], _run(1400.0)),
        "cold": report.median_run([_phase(800.0, tokens=10_000)]),
        "warm": report.median_run([_phase(750.0)]),
        "paced": {**_phase(400.0, tokens=2200), "target_rps": 400.0},
        "memory": {
            "redis_used_memory_before": 1_000_000,
            "redis_used_memory_after": 2_000_000,
            "cold_scans_cached": 1200,
            "redis_bytes_per_scan": report.bytes_per_scan(1_000_000, 2_000_000, 1200),
            "worker_rss_cold": rss,
            "worker_rss_warm": rss,
        },
        "tokens": {
            "minted": 12_201,
            "cold": [10_000],
            "paced": 2200,
            "memory_fill": 0,
            "reruns": 0,
            "ran_out": ran_out or [],
        },
        "scale_out": {
            "workers": 2,
            "rps": 1600.0,
            "non_2xx": 0,
            "worker_cpu_seconds": [0.5, 0.6],
            "every_worker_served": True,
        },
        "p99_target_ms": 10.0,
    }
    result["algorithms"] = {"ES256": report.algorithm(result["ceilings"], [3000.0], [_phase(800.0, tokens=10_000)])}
    result["ratios"] = report.ratios(result)
    return result


def test_composite_ceilings_add_the_costs_of_the_parts() -> None:
    """1/(1/a + 1/b + 1/c) for a cold scan, 1/(1/a + 1/c) for a warm one."""
    cold, warm = report.composite_ceilings(3000.0, 3000.0, 3000.0)
    assert cold == pytest.approx(1000.0)
    assert warm == pytest.approx(1500.0)
    cold, warm = report.composite_ceilings(2000.0, 4000.0, 8000.0)
    assert cold == pytest.approx(1 / (1 / 2000 + 1 / 4000 + 1 / 8000))
    assert warm == pytest.approx(1 / (1 / 2000 + 1 / 8000))


def test_ratios_are_the_figures_over_their_ceilings() -> None:
    """Each ratio is a figure divided by its ceiling, rounded as reported; the targets are 0.8 of it."""
    q = _result()["ratios"]
    assert q == {
        "cold_composite_ceiling_rps": 1000.0,
        "warm_composite_ceiling_rps": 1500.0,
        "cold_over_ceiling": 0.8,
        "warm_over_ceiling": 0.5,
        "empty_handler_over_cold": 3.75,
        "empty_handler_over_warm": 4.0,
        "paced_p99_ms": 4.0,
        "cold_target_met": True,
        "warm_target_met": False,
    }


@pytest.mark.parametrize(
    ("rounds", "median"),
    [([5.0], 5.0), ([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 3.0, 2.0], 3.0), ([2.0, 9.0, 7.0, 1.0, 8.0], 7.0)],
)
def test_the_median_round_is_a_round_measured(rounds: list[float], median: float) -> None:
    """The middle round (of an even number, the higher of the middle two), for runs and for plain
    figures alike; every round's throughput stays beside the chosen run, in the order they ran."""
    runs = [_run(rps, round=i) for i, rps in enumerate(rounds)]
    chosen = report.median_run(runs)
    assert chosen["rps"] == median == report.median(rounds)
    assert chosen["round"] == rounds.index(median)
    assert chosen["rps_rounds"] == rounds
    assert all("rps_rounds" not in run for run in runs)  # the runs themselves are left as they were


def test_ceilings_are_the_medians_of_their_rounds() -> None:
    """a, b and c each the median of its rounds, with every round reported, and the cross-check as measured."""
    c = report.ceilings([_run(10.0), _run(30.0), _run(20.0)], [7.0, 5.0, 6.0], [1.0, 3.0, 2.0], _run(4.0))
    assert (c["empty_http_rps"], c["verify_per_s"], c["redis_round_trips_per_s"]) == (20.0, 6.0, 2.0)
    assert c["http_plus_redis_rps"] == 4.0
    assert c["rounds"] == {"a": [10.0, 30.0, 20.0], "b": [7.0, 5.0, 6.0], "c": [1.0, 3.0, 2.0]}
    assert c["empty_http_wrk"]["rps"] == 20.0


def test_tokens_for_a_phase_are_a_fixed_margin_over_what_it_can_scan() -> None:
    """The most a phase may scan times TOKEN_FACTOR, plus TOKEN_SURPLUS: never fewer than it can use."""
    assert report.tokens_for(1000.0, 2.0) == 2000 * report.TOKEN_FACTOR + report.TOKEN_SURPLUS
    assert report.tokens_for(0.0, 2.0) == report.TOKEN_SURPLUS
    for rate, seconds in ((1.0, 1.0), (2717.3, 1.0), (4589.0, 2.0), (123_456.7, 3.5)):
        assert report.tokens_for(rate, seconds) >= rate * seconds + report.TOKEN_SURPLUS


def test_new_scans_leave_out_the_re_scans() -> None:
    """A re-scan is counted both as decided and as a cache hit; it adds no record to Redis."""
    assert report.new_scans({"accepted": 10, "rejected": 2, "cached": 4}) == 8
    assert report.new_scans({"accepted": 5, "rejected": 0, "cached": 5}) == 0


def test_memory_figures() -> None:
    """Bytes per scan is the growth over the scans; worker RSS over phases of one kind adds each phase's growth."""
    assert report.bytes_per_scan(1000, 11_000, 10) == 1000.0
    assert report.bytes_per_scan(1000, 1000, 0) == 0.0
    phases = [
        {"start_kib": 100, "end_kib": 110, "max_kib": 115},
        {"start_kib": 112, "end_kib": 113, "max_kib": 140},
        {"start_kib": 113, "end_kib": 120, "max_kib": 121},
    ]
    assert report.rss_summary(phases) == {"start_kib": 100, "end_kib": 120, "max_kib": 140, "growth_within_kib": 18}


def test_phases_whose_tokens_ran_out_are_named() -> None:
    """Any cold round or the paced phase that ran out of fresh tokens, by name; a cold round of an
    algorithm measured beside the first, with the algorithm's name."""
    cold = [_phase(1.0), _phase(1.0, exhausted=3), _phase(1.0)]
    assert report.ran_out({"ES256": cold}, _phase(1.0)) == ["cold round 2"]
    assert report.ran_out({"ES256": cold[:1]}, _phase(1.0, exhausted=1)) == ["paced"]
    assert report.ran_out({"ES256": cold[:1]}, _phase(1.0)) == []
    assert report.ran_out({"ES256": cold[:1], "SM2": cold}, _phase(1.0)) == ["cold SM2 round 2"]


def test_an_algorithms_figures_are_its_own_ceiling_and_cold_scans() -> None:
    """b and cold of one algorithm, the medians of its rounds; its composite ceiling made with its own b,
    and the service's CPU per cold scan (cores over scans a second)."""
    ceilings = report.ceilings([_run(3000.0)], [3000.0], [3000.0], _run(1400.0))
    figures = report.algorithm(ceilings, [600.0, 500.0, 700.0], [_phase(400.0, tokens=5), _phase(300.0, tokens=7)])
    assert figures["verify_per_s"] == 600.0
    assert figures["verify_rounds"] == [600.0, 500.0, 700.0]
    assert (figures["cold_rps"], figures["cold_rps_rounds"]) == (400.0, [400.0, 300.0])
    assert figures["cold_composite_ceiling_rps"] == pytest.approx(1 / (1 / 3000 + 1 / 600 + 1 / 3000), abs=0.05)
    assert figures["cold_over_ceiling"] == round(400.0 / figures["cold_composite_ceiling_rps"], 3)
    assert figures["service_cpu_us_per_cold_scan"] == round(0.9 / 400.0 * 1e6, 1)
    assert (figures["cold_p50_ms"], figures["cold_p99_ms"]) == (1.0, 4.0)
    assert figures["service"] == {"accepted": 400, "rejected": 0, "cached": 0}
    assert figures["tokens"] == [5, 7]


def test_the_text_report_names_every_part() -> None:
    """describe() gives a line to every ceiling, phase, the tokens, memory and scale-out, and says when
    tokens ran out."""
    text = report.describe(_result())
    for words in ("empty aiohttp POST handler", "ES256 verify", "Redis GET", "cross-check", "composite ceilings",
                  "cold ", "warm ", "paced ", "fresh tokens: 12,201 minted", "cold / ceiling = 0.80",
                  "warm / ceiling = 0.50", "Redis memory", "worker RSS", "scale-out"):  # fmt: skip
        assert words in text, words
    assert "RAN OUT" not in text
    assert "RAN OUT even so in cold round 1" in report.describe(_result(ran_out=["cold round 1"]))
    assert "side by side" not in text  # one algorithm: nothing to set beside it


def test_the_text_report_sets_algorithms_side_by_side() -> None:
    """With more than one algorithm, describe() gives each its line: b, cold, CPU a scan, ceiling, ratio."""
    result = _result()
    result["algorithms"]["SM2"] = report.algorithm(result["ceilings"], [1500.0], [_phase(500.0, tokens=9)])
    text = report.describe(result)
    assert "signature algorithms side by side" in text
    [sm2] = [line for line in text.splitlines() if line.startswith("  SM2")]
    assert "b    1,500 /s" in sm2
    assert "cold     500 req/s" in sm2
    assert "1,800 µs service CPU a scan" in sm2
    assert "ceiling 750/s, cold / ceiling 0.67" in sm2  # 1/(1/3000 + 1/1500 + 1/3000)
