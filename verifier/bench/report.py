"""The ratios ``verifier bench`` reports, and its figures as text a person reads."""

from __future__ import annotations

from typing import Any

TARGET_RATIO = 0.8


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Cold and warm throughput against their composite ceilings, computed from the figures in
    ``result`` alone: cold / (1/(1/a + 1/b + 1/c)) and warm / (1/(1/a + 1/c)), where a is the empty
    handler's throughput, b raw ES256 verifications per second and c Redis round trips per second."""
    c = result["ceilings"]
    a, b, r = c["empty_http_rps"], c["es256_verify_per_s"], c["redis_round_trips_per_s"]
    cold_ceiling = 1 / (1 / a + 1 / b + 1 / r)
    warm_ceiling = 1 / (1 / a + 1 / r)
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
        f"  b  ES256 verify, cryptography, one process   {c['es256_verify_per_s']:>10,.0f} /s",
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
    lines += [
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
