"""The arithmetic of ``verifier bench`` (sizes, medians, ratios), and its figures as text a person reads.
Pure functions of the figures: nothing here starts a process or measures anything."""

from __future__ import annotations

import math
from typing import Any

TARGET_RATIO = 0.8
LIBRARIES = {"ES256": "cryptography", "EdDSA": "cryptography", "SM2": "GmSSL"}  # what b runs, per algorithm
# Fresh tokens for a phase: the most scans it is expected to make, times TOKEN_FACTOR, plus TOKEN_SURPLUS.
TOKEN_FACTOR = 1.5
TOKEN_SURPLUS = 1_000


def composite_ceilings(a: float, b: float, c: float) -> tuple[float, float]:
    """The cold and warm composite ceilings, 1/(1/a + 1/b + 1/c) and 1/(1/a + 1/c): a is the empty
    handler's throughput, b raw signature verifications per second, c Redis round trips per second."""
    return 1 / (1 / a + 1 / b + 1 / c), 1 / (1 / a + 1 / c)


def tokens_for(rate: float, seconds: float) -> int:
    """Fresh tokens for a phase of ``seconds`` expected to scan at ``rate`` a second at most, with a
    fixed margin (:data:`TOKEN_FACTOR`, :data:`TOKEN_SURPLUS`) on top."""
    return math.ceil(max(0.0, rate) * seconds * TOKEN_FACTOR) + TOKEN_SURPLUS


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (of an even number, the higher of the middle two), with every
    run's throughput beside it in ``rps_rounds``, in the order they ran."""
    chosen = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])
    chosen["rps_rounds"] = [r["rps"] for r in runs]
    return chosen


def median(values: list[float]) -> float:
    """The median of ``values`` by the same rule as :func:`median_run`: the middle value, or of an even
    number the higher of the middle two, so every median is a figure some round measured."""
    return sorted(values)[len(values) // 2]


def ceilings(a_runs: list[dict[str, Any]], b: list[float], c: list[float], cross: dict[str, Any]) -> dict[str, Any]:
    """The ceilings a, b and c as the medians of their rounds, every round beside them, and the
    cross-check (the empty handler plus one Redis GET, measured once)."""
    empty = median_run(a_runs)
    return {
        "empty_http_rps": empty["rps"],
        "verify_per_s": median(b),
        "redis_round_trips_per_s": median(c),
        "http_plus_redis_rps": cross["rps"],
        "rounds": {"a": empty["rps_rounds"], "b": list(b), "c": list(c)},
        "empty_http_wrk": empty,
    }


def algorithm(ceilings: dict[str, Any], b: list[float], cold_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One signature algorithm's figures side by side with the others': its verification ceiling b and
    its cold scans (medians of the rounds), the service's CPU per cold scan, and cold against the
    composite ceiling made with its own b."""
    cold = median_run(cold_runs)
    verify = median(b)
    ceiling, _ = composite_ceilings(ceilings["empty_http_rps"], verify, ceilings["redis_round_trips_per_s"])
    return {
        "verify_per_s": verify,
        "verify_rounds": list(b),
        "cold_rps": cold["rps"],
        "cold_rps_rounds": cold["rps_rounds"],
        "cold_p50_ms": round(cold["latency_us"]["p50"] / 1000, 2),
        "cold_p99_ms": round(cold["latency_us"]["p99"] / 1000, 2),
        "service_cpu_us_per_cold_scan": round(cold["service_cpu_cores"] / cold["rps"] * 1e6, 1) if cold["rps"] else 0.0,
        "cold_composite_ceiling_rps": round(ceiling, 1),
        "cold_over_ceiling": round(cold["rps"] / ceiling, 3),
        "service": cold["service"],
        "tokens": [r["tokens"] for r in cold_runs],
    }


def new_scans(service: dict[str, int]) -> int:
    """Scans the service decided for tokens it had not seen at that counter (re-scans are counted as
    decided and as cached hits both)."""
    return int(service["accepted"] + service["rejected"] - service["cached"])


def rss_summary(samples: list[dict[str, int]]) -> dict[str, int]:
    """First and last sample over phases of one kind, the largest, and how much it grew within those
    phases (the sum of each phase's end minus its start)."""
    return {
        "start_kib": samples[0]["start_kib"],
        "end_kib": samples[-1]["end_kib"],
        "max_kib": max(s["max_kib"] for s in samples),
        "growth_within_kib": sum(s["end_kib"] - s["start_kib"] for s in samples),
    }


def bytes_per_scan(before: int, after: int, scans: int) -> float:
    """Redis memory per cached scan: the growth of ``used_memory`` over the new scans it holds."""
    return round((after - before) / max(1, scans), 1)


def ran_out(cold_runs: dict[str, list[dict[str, Any]]], paced: dict[str, Any]) -> list[str]:
    """The measured phases whose fresh tokens ran out (their throughput is understated); cold rounds of
    an algorithm after the first are named with it."""
    first = next(iter(cold_runs))
    names = [
        f"cold round {i}" if alg == first else f"cold {alg} round {i}"
        for alg, runs in cold_runs.items()
        for i, run in enumerate(runs, 1)
        if run["exhausted"]
    ]
    return names + (["paced"] if paced["exhausted"] else [])


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Cold and warm throughput against their composite ceilings (:func:`composite_ceilings`), computed
    from the figures in ``result`` alone."""
    c = result["ceilings"]
    a = c["empty_http_rps"]
    cold_ceiling, warm_ceiling = composite_ceilings(a, c["verify_per_s"], c["redis_round_trips_per_s"])
    cold, warm, paced = result["cold"]["rps"], result["warm"]["rps"], result["paced"]
    return {
        "cold_composite_ceiling_rps": round(cold_ceiling, 1),
        "warm_composite_ceiling_rps": round(warm_ceiling, 1),
        "cold_over_ceiling": round(cold / cold_ceiling, 3),
        "warm_over_ceiling": round(warm / warm_ceiling, 3),
        "empty_handler_over_cold": round(a / cold, 2),
        "empty_handler_over_warm": round(a / warm, 2),
        "paced_p99_ms": round(paced["latency_us"]["p99"] / 1000, 2),
        "cold_target_met": cold / cold_ceiling >= TARGET_RATIO,
        "warm_target_met": warm / warm_ceiling >= TARGET_RATIO,
    }


def _ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def _tokens_line(t: dict[str, Any]) -> str:
    line = (
        f"fresh tokens: {t['minted']:,} minted; cold rounds given {t['cold']}, paced {t['paced']:,}; "
        f"phases re-run with more after running out: {t['reruns']}"
    )
    if t["ran_out"]:
        return line + f"; RAN OUT even so in {', '.join(t['ran_out'])}: their throughput is understated"
    return line


def describe(r: dict[str, Any]) -> str:
    """Every figure and ratio, one a line."""
    c, q, m = r["ceilings"], r["ratios"], r["memory"]
    lg = r["load_generator"]
    lines = [
        f"load generator: wrk ({lg['path']}), {lg['threads']} threads, {lg['connections']} connections, "
        f"{r['seconds']} s a phase, requests prepared in advance; {r['cpus']} CPUs; event loop {r['event_loop']}",
        f"{r['rounds']} rounds of a, b, c, cold and warm in turn; each figure is the median round",
        "ceilings (a, b, c):",
        f"  a  empty aiohttp POST handler, same request   {c['empty_http_rps']:>10,.0f} req/s"
        f"  (wrk used {c['empty_http_wrk']['wrk_cpu_cores']:.2f} cores)",
        f"  b  {r['alg'] + ' verify, ' + LIBRARIES[r['alg']] + ', one process':<41} {c['verify_per_s']:>10,.0f} /s",
        f"  c  Redis GET, redis-py asyncio, one process  {c['redis_round_trips_per_s']:>10,.0f} /s",
        f"     (cross-check: aiohttp handler + one GET    {c['http_plus_redis_rps']:>10,.0f} req/s)",
        f"composite ceilings: cold 1/(1/a+1/b+1/c) = {q['cold_composite_ceiling_rps']:,.0f}/s, "
        f"warm 1/(1/a+1/c) = {q['warm_composite_ceiling_rps']:,.0f}/s",
    ]
    for name in ("cold", "warm", "paced"):
        p = r[name]
        lat = p["latency_us"]
        lines.append(
            f"{name:5}  {p['rps']:>8,.0f} req/s  p50 {_ms(lat['p50'])}  p99 {_ms(lat['p99'])}  "
            f"non-2xx {p['errors']['status']}  accepted {p['service']['accepted']} cached {p['service']['cached']}  "
            f"CPU: service {p['service_cpu_cores']:.2f}, Redis {p['redis_cpu_cores']:.2f}, "
            f"wrk {p['wrk_cpu_cores']:.2f} cores"
            + (f"  rounds {p['rps_rounds']}" if "rps_rounds" in p else "")
            + (f"  tokens ran out ({p['exhausted']} times)" if p["exhausted"] else "")
        )
    if len(r["algorithms"]) > 1:
        lines.append("signature algorithms side by side (each one's b and cold scans, in turns every round):")
        lines += [
            f"  {alg:5}  b {f['verify_per_s']:>8,.0f} /s  cold {f['cold_rps']:>7,.0f} req/s (p99 {f['cold_p99_ms']} ms)"
            f"  {f['service_cpu_us_per_cold_scan']:>6,.0f} µs service CPU a scan"
            f"  ceiling {f['cold_composite_ceiling_rps']:,.0f}/s, cold / ceiling {f['cold_over_ceiling']:.2f}"
            for alg, f in r["algorithms"].items()
        ]
    lines += [
        _tokens_line(r["tokens"]),
        f"paced at {r['paced']['target_rps']:,.0f}/s (half of cold): p99 {q['paced_p99_ms']} ms "
        f"(target < {r['p99_target_ms']:.0f} ms: {'met' if q['paced_p99_ms'] < r['p99_target_ms'] else 'NOT met'})",
        f"cold / ceiling = {q['cold_over_ceiling']:.2f}  warm / ceiling = {q['warm_over_ceiling']:.2f}  "
        f"(target {TARGET_RATIO}: cold {'met' if q['cold_target_met'] else 'NOT met'}, "
        f"warm {'met' if q['warm_target_met'] else 'NOT met'})",
        f"load generator headroom: empty handler {q['empty_handler_over_cold']:.1f}x cold, "
        f"{q['empty_handler_over_warm']:.1f}x warm",
        f"Redis memory: {m['redis_bytes_per_scan']:,.0f} bytes per cached scan over {m['cold_scans_cached']:,} scans"
        + ("" if m["cold_scans_cached"] >= 10_000 else " (fewer than 10,000: see --memory-scans)"),
        "worker RSS: cold phases {start_kib:,} -> {end_kib:,} KiB, grew {growth_within_kib:,} KiB within them; ".format(
            **m["worker_rss_cold"]
        )
        + "warm phases {start_kib:,} -> {end_kib:,} KiB, grew {growth_within_kib:,} KiB within them".format(
            **m["worker_rss_warm"]
        ),
        f"scale-out: --workers {r['scale_out']['workers']} on one port: {r['scale_out']['rps']:,.0f} req/s warm, "
        f"worker CPU seconds {r['scale_out']['worker_cpu_seconds']}, "
        f"every worker served: {r['scale_out']['every_worker_served']}",
    ]
    return "\n".join(lines)
