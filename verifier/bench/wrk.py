"""Driving wrk: requests prepared in advance, one Lua script for every phase.

The requests file holds the ``Authorization`` value on its first line and one JSON body a line after
it. The script's ``init()`` builds each of its thread's requests once with ``wrk.format``; thread
``k`` of ``n`` takes the lines ``i`` with ``i % n == k``, so the threads' slices are disjoint and, in
``once`` mode, every request is a token nobody sent before. A thread whose slice runs out counts it
in ``exhausted``, sends nothing more (an empty request: no token is ever sent twice) and stops.
wrk's clock runs on for the whole ``-d`` all the same, so a phase whose tokens ran out understates its
throughput: ``verifier bench`` runs it again with more tokens, and reports it if it still runs out.
``done()`` prints the figures and the latency distribution as JSON.

Pacing: with a ``rate`` the script also defines ``delay()``, spacing each connection's requests by
a random interval (uniform, 0.5–1.5 × connections / rate), so the offered load is ``rate`` whatever
the answers' speed, as long as each connection's previous answer is back in time (at half the
service's capacity it nearly always is; ``late`` would show otherwise through the achieved rate).
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCRIPT = r"""
local threads, created = {}, 0
function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

local reqs, n, i, once = {}, 0, 0, false
exhausted = 0
function init(args)
  local path, nthreads = args[1], tonumber(args[3])
  once = args[2] == "once"
  local id = wrk.thread:get("id")
  local f = assert(io.open(path, "r"))
  local headers = {["Authorization"] = f:read("*l"), ["Content-Type"] = "application/json"}
  local k = 0
  for line in f:lines() do
    if k % nthreads == id then
      n = n + 1
      reqs[n] = wrk.format("POST", nil, headers, line)
    end
    k = k + 1
  end
  f:close()
  math.randomseed(os.time() + id)
end

function request()
  i = i + 1
  if i > n then
    if once then
      exhausted = exhausted + 1
      wrk.thread:stop()
      return ""
    end
    i = 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local ex = 0
  for _, t in ipairs(threads) do ex = ex + (t:get("exhausted") or 0) end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"exhausted":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes, ex,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""

_DELAY = r"""
local mean_ms = tonumber(PACE_MS)
function delay()
  return math.floor(mean_ms * (0.5 + math.random()))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    """The load generator's settings, the same for every phase it drives."""

    wrk: str
    threads: int = 2
    connections: int = 32
    timeout_s: int = 5


def write_requests(path: Path, auth: str, bodies: Iterable[dict[str, Any]]) -> int:
    """The requests file; returns the number of bodies."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(f"Bearer {auth}\n")
        for body in bodies:
            out.write(json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count


def run(
    load: Load,
    url: str,
    requests_file: Path,
    *,
    seconds: float,
    once: bool,
    rate: float | None = None,
    connections: int | None = None,
) -> dict[str, Any]:
    """Run wrk once; the figures of ``done()``, wrk's own CPU use and the throughput."""
    conns = connections or load.connections
    script = requests_file.with_suffix(".lua")
    text = _SCRIPT
    if rate is not None:
        text += _DELAY.replace("PACE_MS", repr(1000.0 * conns / rate))
    script.write_text(text, encoding="utf-8")
    argv = [load.wrk, "-t", str(load.threads), "-c", str(conns), "-d", f"{max(1, round(seconds))}s",
            "--timeout", f"{load.timeout_s}s", "-s", str(script), url,
            "--", str(requests_file), "once" if once else "cycle", str(load.threads)]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    duration = result["duration_us"] / 1e6
    ok = result["requests"] - result["errors"]["status"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result.update(
        ok=ok,
        rps=round(result["requests"] / duration, 1),
        wrk_cpu_cores=round(cpu / wall, 3),
        connections=conns,
        threads=load.threads,
    )
    return result
