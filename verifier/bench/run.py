"""``verifier bench``: the scan path against the ceilings of its irreducible parts, in one run on one
machine, with one load generator (wrk) and one set of its settings.

It starts its own redis-server and ``verifier serve --workers 1`` on free ports with a temporary
state folder, measures the ceilings (an empty aiohttp handler, raw signature verification, one Redis
round trip), then cold scans (every token new), warm re-scans (same counter, same token) and the
latency at half the cold throughput, paced; Redis memory per cached scan and the worker's resident
memory; and ``--workers 2`` sharing one port. Everything it started is stopped at the end.

The tokens are signed with ES256 unless ``--alg`` names another algorithm (EdDSA, SM2). Naming more
than one (``--alg ES256 --alg SM2``) measures each one's verification ceiling and cold scans side by
side, in turns within every round; the first drives the warm, paced and memory phases.

It never installs system packages: without wrk or redis-server on PATH it says which Debian package
to install and exits 2. Every cold and paced request is a token nobody sent before; a phase whose
tokens run out is run again with twice as many, and one that still runs out is reported (exit 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from verifier.bench import procs, report
from verifier.bench import wrk as bench_wrk
from verifier.errors import UsageError

COUNTER = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"
P99_TARGET_MS = 10.0
RERUNS = 2  # a phase whose fresh tokens ran out is run again, with twice as many, at most this often
ALGS = ("ES256", "EdDSA", "SM2")
SIGNING_UNIT = "sc-police"  # the bench's tokens are Sichuan driving licences


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(after[k] - before[k]) for k in after}


class _Bench:
    """One run: the processes it started, the requests it prepared, the figures it measured."""

    def __init__(
        self, stack: ExitStack, root: Path, load: bench_wrk.Load, seconds: float, redis_server: str, *, algs: list[str]
    ) -> None:
        self.root, self.load, self.seconds = root, load, seconds
        self.state = root / "state"
        # One counter posts thousands of scans a second here: its rate limit is off (--counter-rate 0). The
        # audit trail is written by a `verifier audit writer` process of its own (the service runs with
        # --separate-audit-writer), so the service's CPU is the scan path's and the trail's is measured apart.
        self.env = {**os.environ, "VERIFIER_STATE_DIR": str(self.state), "VERIFIER_COUNTER_RATE": "0",
                    "VERIFIER_SEPARATE_AUDIT_WRITER": "1"}  # fmt: skip
        self.redis = procs.start_redis(redis_server, root)
        stack.callback(self.redis.stop)
        self.redis_url = f"redis://127.0.0.1:{self.redis.port}/0"
        from verifier.bench.mint import publish_keys  # the issuer and its keys: only when benchmarking

        publish_keys(self.state, SIGNING_UNIT, algs)
        self.service = self.serve(workers=1)
        stack.callback(self.service.stop)
        self.writer = procs.start(
            [sys.executable, "-m", "verifier", "audit", "writer", "--redis-url", self.redis_url],
            port=0, log=root / "audit-writer.log", env=self.env,
        )  # fmt: skip
        stack.callback(self.writer.stop)
        self.key = subprocess.run(
            [sys.executable, "-m", "verifier", "counters", "key", COUNTER, "--redis-url", self.redis_url],
            capture_output=True, text=True, env=self.env, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
        self.minted = 0
        self.reruns = 0
        self.new_scans = 0  # scans of tokens new to the counter over every phase: the records Redis holds

    def serve(self, *, workers: int) -> procs.Proc:
        """``verifier serve`` on a free port, on the bench's Redis and state folder."""
        port = procs.free_port()
        argv = [
            "verifier",
            "serve",
            "--port",
            str(port),
            "--redis-url",
            self.redis_url,
            "--workers",
            str(workers),
            "--allow-volatile-store",
        ]  # fmt: skip  (the bench's own Redis keeps nothing on disk)
        log = self.root / f"serve-{port}.log"
        return procs.start_python(argv, log=log, env=self.env, ready_path="/readyz", port=port)

    def requests(self, name: str, count: int, alg: str) -> tuple[Path, int]:
        """A requests file of ``count`` fresh tokens signed with ``alg`` (licence numbers never used in this run)."""
        from verifier.bench.mint import mint_bodies  # the issuer and its keys: only when benchmarking

        path = self.root / f"{name}.txt"
        bodies = mint_bodies(self.state, self.minted, count, SCENARIO, alg)
        written = bench_wrk.write_requests(path, self.key, bodies)
        self.minted += written
        return path, written

    def scan_once(self, path: Path) -> None:
        """Post the first request of a requests file once, so that the token is known to the counter."""
        auth, body = path.read_text(encoding="utf-8").splitlines()[:2]
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.service.port}/v1/scans",
            data=body.encode(),
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            if response.status != 200:
                raise RuntimeError(f"the service answered the warm token's first scan with {response.status}")

    def empty_app(self, stack: ExitStack) -> int:
        """The empty aiohttp app (and its ``/redis`` handler) on a free port, for the whole run."""
        port = procs.free_port()
        empty = procs.start_python(
            ["verifier.bench.apps", "empty", "--port", str(port), "--redis-url", self.redis_url],
            log=self.root / "empty.log", env=self.env, ready_path="/healthz", port=port,
        )  # fmt: skip
        stack.callback(empty.stop)
        return port

    def verify_rate(self, alg: str) -> float:
        """b: raw verifications of ``alg`` a second, in a process of its own."""
        args = ["verifier.bench.apps", "verify", "--seconds", str(min(self.seconds, 1.5)), "--alg", alg]
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
        writer_cpu = procs.cpu_seconds(self.writer.pid)
        started = time.perf_counter()
        url = f"http://127.0.0.1:{port}/v1/scans"
        result = bench_wrk.run(self.load, url, path, seconds=seconds or self.seconds, once=once, **kw)
        wall = time.perf_counter() - started
        result["service_cpu_cores"] = round((procs.cpu_seconds(pid) - cpu) / wall, 3)
        result["redis_cpu_cores"] = round((procs.cpu_seconds(self.redis.pid) - redis_cpu) / wall, 3)
        result["audit_writer_cpu_cores"] = round((procs.cpu_seconds(self.writer.pid) - writer_cpu) / wall, 3)
        result["service"] = _delta(procs.settled_metrics(port), before)
        self.new_scans += report.new_scans(result["service"])
        return result

    def fresh_phase(self, name: str, count: int, alg: str, **kw: Any) -> dict[str, Any]:
        """A phase of ``count`` fresh tokens, each sent once. If they ran out before wrk's time was up
        (its throughput would be understated), it is run again with twice as many new ones, at most
        :data:`RERUNS` times; the last run is returned, its ``exhausted`` still set if it ran out."""
        for attempt in range(RERUNS + 1):
            path, minted = self.requests(f"{name}-{attempt}", count, alg)
            result = self.phase(path, once=True, **kw)
            result["tokens"] = minted
            if not result["exhausted"] or attempt == RERUNS:
                return result
            self.reruns += 1
            count *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def redis_memory(self) -> int:
        """Redis's own ``used_memory``."""
        return procs.redis_memory(self.redis.port)


def run_bench(
    seconds: float = 2.0,
    *,
    rounds: int = 3,
    threads: int = 2,
    connections: int = 32,
    memory_scans: int = 10_000,
    cold_tokens: int | None = None,
    algs: tuple[str, ...] = ("ES256",),
) -> dict[str, Any]:
    """Run every phase and return the figures (``docs/benchmark.md`` says what each means). The
    ceilings and the service are measured in turns, ``rounds`` times, and each figure is the median.
    ``cold_tokens`` fresh tokens are minted for each cold phase; by default :func:`report.tokens_for`
    sizes them from the higher of the round's composite ceiling and the fastest cold round so far.
    ``algs`` sign the tokens: each one's ceiling b and cold scans are measured in every round; the
    first's are the run's ``ceilings`` and ``cold``, and its tokens drive every other phase.

    Raises :class:`UsageError` saying what to install, before starting anything, if wrk or
    redis-server is missing."""
    tools = procs.find_tools()
    load = bench_wrk.Load(tools["wrk"], threads=threads, connections=connections)
    from verifier.web.eventloop import loop_name

    primary = algs[0]
    out: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "cpus": os.cpu_count(), "event_loop": loop_name()}
    out["alg"] = primary
    out["load_generator"] = {"name": "wrk", "path": tools["wrk"], "threads": threads,
                             "connections": connections, "requests": "prepared in init(), one per token"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="verifier-bench-") as tmp, ExitStack() as stack:
        bench = _Bench(stack, Path(tmp), load, seconds, tools["redis-server"], algs=list(algs))
        warm_file, _ = bench.requests("warm", 1, primary)  # every request of every phase has this size
        bench.scan_once(warm_file)  # so that every warm request is a re-scan
        empty_url = f"http://127.0.0.1:{bench.empty_app(stack)}"
        runs: dict[str, list[Any]] = {"a": [], "c": [], "warm": []}
        verified: dict[str, list[float]] = {alg: [] for alg in algs}
        cold_runs: dict[str, list[dict[str, Any]]] = {alg: [] for alg in algs}
        rss_cold: list[procs.RssSampler] = []
        rss_warm: list[procs.RssSampler] = []
        memory_before = bench.redis_memory()
        for turn in range(rounds):
            for alg in algs:
                verified[alg].append(bench.verify_rate(alg))
            runs["a"].append(bench_wrk.run(load, f"{empty_url}/empty", warm_file, seconds=seconds, once=False))
            if turn == 0:  # a and c together, once: the composite model's cross-check
                cross = bench_wrk.run(load, f"{empty_url}/redis", warm_file, seconds=seconds, once=False)
            runs["c"].append(bench.redis_rate())
            a, c = runs["a"][-1]["rps"], runs["c"][-1]
            rss_cold.append(_cold_turn(bench, turn, a=a, c=c, verified=verified, runs=cold_runs, tokens=cold_tokens))
            # Warm: the same counter re-scans one token it has scanned.
            with procs.RssSampler(bench.service.pid) as rss:
                runs["warm"].append(bench.phase(warm_file, once=False))
            rss_warm.append(rss)
        out["ceilings"] = report.ceilings(runs["a"], verified[primary], runs["c"], cross)
        out["cold"], out["warm"] = cold, _ = report.median_run(cold_runs[primary]), report.median_run(runs["warm"])
        out["algorithms"] = {alg: report.algorithm(out["ceilings"], verified[alg], cold_runs[alg]) for alg in algs}
        # Latency at half the cold throughput, paced, with tokens nobody has shown yet.
        rate = max(1.0, cold["rps"] / 2)
        paced_seconds, paced_conns = 2.0 * seconds, max(connections, 64)
        paced = bench.fresh_phase("paced", report.tokens_for(rate, paced_seconds), primary, rate=rate,
                                  connections=paced_conns, seconds=paced_seconds)  # fmt: skip
        out["paced"] = {**paced, "target_rps": round(rate, 1)}
        fill = max(0, memory_scans - bench.new_scans)
        if fill:  # more cold scans, only to weigh them in Redis, until they run out
            # a few more than missing: what is in flight as wrk's threads stop may never reach the service
            fill_file, fill = bench.requests("fill", fill + connections, primary)
            bench.phase(fill_file, once=True, seconds=math.ceil(fill / max(1.0, cold["rps"]) * 1.2))
        memory_after, scans = bench.redis_memory(), bench.new_scans
        out["memory"] = {
            "redis_used_memory_before": memory_before,
            "redis_used_memory_after": memory_after,
            "cold_scans_cached": scans,
            "redis_bytes_per_scan": report.bytes_per_scan(memory_before, memory_after, scans),
            "worker_rss_cold": report.rss_summary([s.summary() for s in rss_cold]),
            "worker_rss_warm": report.rss_summary([s.summary() for s in rss_warm]),
        }
        out["tokens"] = {
            "minted": bench.minted,
            "cold": [r["tokens"] for r in cold_runs[primary]],
            "paced": paced["tokens"],
            "memory_fill": fill,
            "reruns": bench.reruns,
            "ran_out": report.ran_out(cold_runs, paced),
        }
        out["scale_out"] = _scale_out(bench, warm_file, max(1.0, seconds))
    out["ratios"] = report.ratios(out)
    out["p99_target_ms"] = P99_TARGET_MS
    return out


def _cold_turn(
    bench: _Bench,
    turn: int,
    *,
    a: float,
    c: float,
    verified: dict[str, list[float]],
    runs: dict[str, list[dict[str, Any]]],
    tokens: int | None,
) -> procs.RssSampler:
    """One round's cold phases, every token new, for each algorithm in turn (``tokens`` each, or as many
    as its own composite ceiling calls for); the worker's memory over the first algorithm's phase."""
    sampled = []
    for alg, cold in runs.items():
        ceiling, _ = report.composite_ceilings(a, verified[alg][-1], c)
        count = tokens or report.tokens_for(max([ceiling, *(r["rps"] for r in cold)]), bench.seconds)
        with procs.RssSampler(bench.service.pid) as rss:
            cold.append(bench.fresh_phase(f"cold-{alg}-{turn}", count, alg))
        sampled.append(rss)
    return sampled[0]


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


def _check_arguments(args: argparse.Namespace) -> None:
    """Numbers a run cannot be made with, refused before anything starts."""
    least = {"seconds": 0.1, "rounds": 1, "threads": 1, "connections": 1, "memory_scans": 0, "cold_tokens": 1}
    for name, minimum in least.items():
        value = getattr(args, name)
        if value is not None and not value >= minimum:  # NaN is not >= anything
            option = "--" + name.replace("_", "-")
            raise UsageError(
                f"{option} 须不小于 {minimum:g}，而不是 {value} / {option} must be at least {minimum:g}, not {value}"
            )


def _command(args: argparse.Namespace) -> int:
    _check_arguments(args)
    try:
        procs.find_tools()
    except UsageError as exc:  # said here whole, not as an error line: it is what to install
        print(exc, file=sys.stderr)
        return 2
    result = run_bench(
        args.seconds,
        rounds=args.rounds,
        threads=args.threads,
        connections=args.connections,
        memory_scans=args.memory_scans,
        cold_tokens=args.cold_tokens,
        algs=tuple(dict.fromkeys(args.alg or ["ES256"])),
    )
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(report.describe(result))
    if result["tokens"]["ran_out"]:
        print(f"fresh tokens ran out in {', '.join(result['tokens']['ran_out'])}: throughput understated; "
              "run again with --cold-tokens", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def register(sub: Any) -> None:
    """Add ``verifier bench``."""
    p = sub.add_parser(
        "bench", help="压测：扫码路径与各部分的上限对比（自带 Redis） / the scan path against the ceilings of its parts"
    )
    p.add_argument(
        "--seconds", type=float, default=2.0, help="每个测量阶段的秒数 / length of each measured phase in seconds"
    )
    p.add_argument(
        "--rounds", type=int, default=3, help="轮数，报告中位数 / turns of ceilings and service; medians reported"
    )
    p.add_argument("--threads", type=int, default=2, help="wrk 线程数 / wrk threads")
    p.add_argument("--connections", type=int, default=32, help="wrk 连接数 / wrk connections")
    p.add_argument(
        "--memory-scans",
        type=int,
        default=10_000,
        help="至少多少次新扫码用于称量 Redis 内存 / cold scans at least, to weigh in Redis",
    )
    p.add_argument(
        "--cold-tokens",
        type=int,
        help="每个冷阶段的新令牌数（默认按上限估算） / fresh tokens per cold phase (default: from the ceilings)",
    )
    p.add_argument(
        "--alg",
        action="append",
        choices=ALGS,
        help="令牌的签名算法（默认 ES256），可重复以并列比较 / signature algorithm of the tokens (default ES256);"
        " repeat it to measure several side by side",
    )
    p.add_argument("--json", action="store_true", help="以 JSON 输出全部数据 / print every figure as JSON")
    p.set_defaults(func=_command)
