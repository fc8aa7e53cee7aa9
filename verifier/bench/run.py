"""``verifier bench``: the scan path against the ceilings of its irreducible parts, in one run on one
machine, with one load generator (wrk) and one set of its settings.

It starts its own redis-server and ``verifier serve --workers 1`` on free ports with a temporary
state folder, measures the ceilings (an empty aiohttp handler, raw ES256 verification, one Redis
round trip), then cold scans (every token new), warm re-scans (same counter, same token) and the
latency at half the cold throughput, paced; Redis memory per cached scan and the worker's resident
memory; and ``--workers 2`` sharing one port. Everything it started is stopped at the end.

It never installs system packages: without wrk or redis-server on PATH it says which Debian package
to install and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from verifier.bench import procs
from verifier.bench import wrk as bench_wrk
from verifier.bench.report import describe, ratios

COUNTER = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"
P99_TARGET_MS = 10.0


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(after[k] - before[k]) for k in after}


class _Bench:
    """One run: the processes it started, the requests it prepared, the figures it measured."""

    def __init__(self, stack: ExitStack, root: Path, load: bench_wrk.Load, seconds: float, redis_server: str) -> None:
        self.root, self.load, self.seconds = root, load, seconds
        self.state = root / "state"
        self.env = {**os.environ, "VERIFIER_STATE_DIR": str(self.state)}
        self.redis = procs.start_redis(redis_server, root)
        stack.callback(self.redis.stop)
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        self.service = self.serve(workers=1)
        stack.callback(self.service.stop)
        self.key = subprocess.run(
            [sys.executable, "-m", "verifier", "counters", "key", COUNTER],
            capture_output=True, text=True, env=self.env, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
        self.minted = 0

    def serve(self, *, workers: int) -> procs.Proc:
        """``verifier serve`` on a free port, on the bench's Redis and state folder."""
        port = procs.free_port()
        argv = ["verifier", "serve", "--port", str(port), "--redis-url", self.redis_url, "--workers", str(workers)]
        log = self.root / f"serve-{port}.log"
        return procs.start_python(argv, log=log, env=self.env, ready_path="/readyz", port=port)

    def requests(self, name: str, count: int) -> tuple[Path, int]:
        """A requests file of ``count`` fresh tokens (licence numbers never used in this run)."""
        from verifier.bench.mint import mint_bodies  # the issuer and its keys: only when benchmarking

        path = self.root / f"{name}.txt"
        written = bench_wrk.write_requests(path, self.key, mint_bodies(self.state, self.minted, count, SCENARIO))
        self.minted += written
        return path, written

    def empty_app(self, stack: ExitStack) -> int:
        """The empty aiohttp app (and its ``/redis`` handler) on a free port, for the whole run."""
        port = procs.free_port()
        empty = procs.start_python(
            ["verifier.bench.apps", "empty", "--port", str(port), "--redis-url", self.redis_url],
            log=self.root / "empty.log", env=self.env, ready_path="/healthz", port=port,
        )  # fmt: skip
        stack.callback(empty.stop)
        return port

    def verify_rate(self) -> float:
        """b: raw ES256 verifications a second, in a process of its own."""
        args = ["verifier.bench.apps", "verify", "--seconds", str(min(self.seconds, 1.5))]
        return float(procs.json_subprocess(args, self.env, 60)["per_second"])

    def redis_rate(self) -> float:
        """c: Redis round trips a second from one process, as many in flight as wrk has connections."""
        args = ["verifier.bench.apps", "redis", "--redis-url", self.redis_url, "--seconds", str(self.seconds),
                "--concurrency", str(self.load.connections)]  # fmt: skip
        return float(procs.json_subprocess(args, self.env, self.seconds + 60)["per_second"])

    def phase(self, path: Path, *, once: bool, seconds: float | None = None, **kw: Any) -> dict[str, Any]:
        """One wrk run against the service, with the service's own counts and CPU use over it."""
        port, pid = self.service.port, self.service.pid
        before, cpu, redis_cpu = procs.service_metrics(port), procs.cpu_seconds(pid), procs.cpu_seconds(self.redis.pid)
        started = time.perf_counter()
        url = f"http://127.0.0.1:{port}/v1/scans"
        result = bench_wrk.run(self.load, url, path, seconds=seconds or self.seconds, once=once, **kw)
        wall = time.perf_counter() - started
        result["service"] = _delta(procs.service_metrics(port), before)
        result["service_cpu_cores"] = round((procs.cpu_seconds(pid) - cpu) / wall, 3)
        result["redis_cpu_cores"] = round((procs.cpu_seconds(self.redis.pid) - redis_cpu) / wall, 3)
        return result

    def redis_memory(self) -> int:
        """Redis's own ``used_memory``."""
        return procs.redis_memory(self.redis.port)


def _scans(phase: dict[str, Any]) -> int:
    return int(phase["service"]["accepted"] + phase["service"]["rejected"])


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput, with every run's throughput beside it."""
    chosen = dict(sorted(runs, key=lambda r: r["rps"])[len(runs) // 2])
    chosen["rps_rounds"] = [r["rps"] for r in runs]
    return chosen


def _rss(samplers: list[procs.RssSampler]) -> dict[str, int]:
    """First and last sample over phases of one kind, and how much it grew within those phases."""
    samples = [s.summary() for s in samplers]
    return {"start_kib": samples[0]["start_kib"], "end_kib": samples[-1]["end_kib"],
            "max_kib": max(s["max_kib"] for s in samples),
            "growth_within_kib": sum(s["end_kib"] - s["start_kib"] for s in samples)}  # fmt: skip


def run_bench(
    seconds: float = 2.0, *, rounds: int = 3, threads: int = 2, connections: int = 32, memory_scans: int = 10_000
) -> dict[str, Any]:
    """Run every phase and return the figures (``docs/benchmark.md`` says what each means). The
    ceilings and the service are measured in turns, ``rounds`` times, and each figure is the median.

    Raises :class:`procs.MissingToolsError` before starting anything if wrk or redis-server is missing."""
    tools = procs.find_tools()
    load = bench_wrk.Load(tools["wrk"], threads=threads, connections=connections)
    from verifier.web.eventloop import loop_name

    out: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "cpus": os.cpu_count(), "event_loop": loop_name()}
    out["load_generator"] = {"name": "wrk", "path": tools["wrk"], "threads": threads,
                             "connections": connections, "requests": "prepared in init(), one per token"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="verifier-bench-") as tmp, ExitStack() as stack:
        bench = _Bench(stack, Path(tmp), load, seconds, tools["redis-server"])
        warm_file, _ = bench.requests("warm", 1)  # every request of every phase has this size
        empty_url = f"http://127.0.0.1:{bench.empty_app(stack)}"
        runs: dict[str, list[Any]] = {"a": [], "b": [], "c": [], "cold": [], "warm": []}
        rss_cold: list[procs.RssSampler] = []
        rss_warm: list[procs.RssSampler] = []
        memory_before = bench.redis_memory()
        out["tokens"] = {"cold": 0}
        for turn in range(rounds):
            runs["b"].append(bench.verify_rate())
            runs["a"].append(bench_wrk.run(load, f"{empty_url}/empty", warm_file, seconds=seconds, once=False))
            if turn == 0:  # a and c together, once: the composite model's cross-check
                cross = bench_wrk.run(load, f"{empty_url}/redis", warm_file, seconds=seconds, once=False)
            runs["c"].append(bench.redis_rate())
            # Cold: every token new; enough of them for the composite ceiling and some.
            a, b, c = runs["a"][-1]["rps"], runs["b"][-1], runs["c"][-1]
            expected = max((r["rps"] * 1.5 for r in runs["cold"]), default=1.1 / (1 / a + 1 / b + 1 / c))
            cold_file, count = bench.requests(f"cold{turn}", math.ceil(expected * seconds) + 64)
            out["tokens"]["cold"] += count
            with procs.RssSampler(bench.service.pid) as rss:
                runs["cold"].append(bench.phase(cold_file, once=True))
            rss_cold.append(rss)
            # Warm: the same counter re-scans one token it has scanned.
            with procs.RssSampler(bench.service.pid) as rss:
                runs["warm"].append(bench.phase(warm_file, once=False))
            rss_warm.append(rss)
        empty_run = _median_run(runs["a"])
        out["ceilings"] = {
            "empty_http_rps": empty_run["rps"],
            "es256_verify_per_s": statistics.median(runs["b"]),
            "redis_round_trips_per_s": statistics.median(runs["c"]),
            "http_plus_redis_rps": cross["rps"],
            "rounds": {"a": empty_run["rps_rounds"], "b": runs["b"], "c": runs["c"]},
            "empty_http_wrk": empty_run,
        }
        out["cold"], out["warm"] = cold, _ = _median_run(runs["cold"]), _median_run(runs["warm"])
        # Latency at half the cold throughput, paced, with tokens nobody has shown yet.
        rate = max(1.0, cold["rps"] / 2)
        paced_seconds, paced_conns = 2.0 * seconds, max(connections, 64)
        paced_file, out["tokens"]["paced"] = bench.requests("paced", math.ceil(rate * paced_seconds * 1.3) + 64)
        paced = bench.phase(paced_file, once=True, rate=rate, connections=paced_conns, seconds=paced_seconds)
        out["paced"] = {**paced, "target_rps": round(rate, 1)}
        scans = sum(_scans(r) for r in runs["cold"]) + _scans(paced)
        if scans < memory_scans:  # more cold scans, only to weigh them in Redis
            fill_file, out["tokens"]["memory_fill"] = bench.requests("fill", memory_scans - scans)
            fill_seconds = math.ceil((memory_scans - scans) / max(1.0, cold["rps"]) * 1.2)  # wrk runs it all
            scans += _scans(bench.phase(fill_file, once=True, seconds=fill_seconds))
        memory_after = bench.redis_memory()
        out["memory"] = {
            "redis_used_memory_before": memory_before,
            "redis_used_memory_after": memory_after,
            "cold_scans_cached": scans,
            "redis_bytes_per_scan": round((memory_after - memory_before) / max(1, scans), 1),
            "worker_rss_cold": _rss(rss_cold),
            "worker_rss_warm": _rss(rss_warm),
        }
        out["scale_out"] = _scale_out(bench, warm_file, max(1.0, seconds))
    out["ratios"] = ratios(out)
    out["p99_target_ms"] = P99_TARGET_MS
    return out


def _scale_out(bench: _Bench, warm_file: Path, seconds: float) -> dict[str, Any]:
    """``verifier serve --workers 2``: one port, two processes; both must take requests."""
    serve = bench.serve(workers=2)
    try:
        deadline = time.monotonic() + 20
        while procs.listeners(serve.port) < 2 and time.monotonic() < deadline:  # both workers have bound it
            time.sleep(0.1)
        workers = procs.workers_of(serve.pid)
        cpu = [procs.cpu_seconds(w) for w in workers]
        url = f"http://127.0.0.1:{serve.port}/v1/scans"
        result = bench_wrk.run(bench.load, url, warm_file, seconds=seconds, once=False)
        used = [round(procs.cpu_seconds(w) - c, 2) for w, c in zip(workers, cpu, strict=True)]
    finally:
        serve.stop()
    return {
        "workers": len(workers),
        "rps": result["rps"],
        "non_2xx": result["errors"]["status"],
        "worker_cpu_seconds": used,
        "every_worker_served": len(used) == 2 and min(used) > 0.1 * max(used) > 0,
    }


def _command(args: argparse.Namespace) -> int:
    try:
        result = run_bench(
            args.seconds,
            rounds=args.rounds,
            threads=args.threads,
            connections=args.connections,
            memory_scans=args.memory_scans,
        )
    except procs.MissingToolsError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(describe(result))
    return 0


def register(sub: Any) -> None:
    """Add ``verifier bench``."""
    p = sub.add_parser("bench", help="the scan path against the ceilings of its parts (starts its own Redis)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each measured phase (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="turns of ceilings and service; medians reported (3)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--memory-scans", type=int, default=10_000, help="cold scans at least, to weigh in Redis")
    p.add_argument("--json", action="store_true", help="print every figure as JSON")
    p.set_defaults(func=_command)
