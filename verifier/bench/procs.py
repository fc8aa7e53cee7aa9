"""The processes ``verifier bench`` starts and watches: a private redis-server, the service, the
empty app, wrk. Every one is started on a free loopback port and stopped by its own process id."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier.errors import UsageError
from verifier.web.metrics import metric_total

_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A started process, its port and its log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def stop(self) -> None:
        """Terminate, then kill if it does not go within five seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(argv: list[str], *, port: int, log: Path, env: dict[str, str] | None = None) -> Proc:
    """Start ``argv`` with its output in ``log``."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Proc(process, port, log)


def start_redis(binary: str, directory: Path) -> Proc:
    """redis-server (``binary``, from :func:`find_tools`) on a free port, keeping nothing on disk; waits
    until it answers PING."""
    port = free_port()
    proc = start(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--loglevel", "warning"],
        port=port, log=directory / "redis.log",
    )  # fmt: skip
    _wait(lambda: _pings(port), proc, "redis-server")
    return proc


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except OSError:
        return False


def _wait(ready: object, proc: Proc, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{name} exited early: {proc.log.read_text(errors='replace')[-2000:]}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start within {timeout} s")


def start_python(module_args: list[str], *, log: Path, env: dict[str, str], ready_path: str, port: int) -> Proc:
    """``python -m …`` listening on ``port``; waits until ``ready_path`` answers 200."""
    proc = start([sys.executable, "-m", *module_args], port=port, log=log, env=env)
    _wait(lambda: http_ok(f"http://127.0.0.1:{port}{ready_path}"), proc, module_args[0])
    return proc


# The programs ``verifier bench`` runs, the Debian package of each, and what it is for (English, Chinese).
TOOLS: dict[str, tuple[str, str, str]] = {
    "wrk": ("wrk", "the load generator", "负载生成器"),
    "redis-server": ("redis-server", "the bench's own Redis", "压测专用的 Redis"),
}


def missing_tools_message(missing: list[str]) -> str:
    """What to install, in English and Chinese, one line per missing program with its apt-get command."""
    lines = [
        "verifier bench needs programs that are not installed; it never installs system packages itself.",
        "verifier bench 所需的程序未安装；它从不自行安装系统软件包。",
    ]
    for name in missing:
        package, role, role_zh = TOOLS[name]
        lines.append(f"  {name} ({role} / {role_zh}): apt-get install {package}")
    lines.append("Install them as root, then run verifier bench again. 请以 root 身份安装后重新运行 verifier bench。")
    return "\n".join(lines)


def find_tools() -> dict[str, str]:
    """The path of each program in :data:`TOOLS` on PATH; a :class:`UsageError` saying which Debian
    package to install for every one that is not there. Only looks: never installs."""
    found = {name: shutil.which(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise UsageError(missing_tools_message(missing))
    return {name: path for name, path in found.items() if path is not None}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def workers_of(pid: int) -> list[int]:
    """The worker processes of ``verifier serve --workers N``: children started by multiprocessing's
    spawn (not its resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def listeners(port: int) -> int:
    """How many sockets listen on loopback TCP ``port`` (one per worker with SO_REUSEPORT)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for ln in lines if ln.split()[1].endswith(f":{port:04X}") and ln.split()[3] == "0A")


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class RssSampler:
    """Samples VmRSS of one process every ``interval`` seconds in a thread, while in a ``with``."""

    pid: int
    interval: float = 0.25
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_kib(self.pid))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(rss_kib(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.samples.append(rss_kib(self.pid))

    def summary(self) -> dict[str, int]:
        """Start, end and largest sample, in KiB."""
        return {"start_kib": self.samples[0], "end_kib": self.samples[-1], "max_kib": max(self.samples)}


def service_metrics(port: int) -> dict[str, float]:
    """The service's own counts of scans (accepted, rejected, cached), from its ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        "accepted": metric_total(text, "verifier_scans_total", decision="accepted"),
        "rejected": metric_total(text, "verifier_scans_total", decision="rejected"),
        "cached": metric_total(text, "verifier_cache_hits_total"),
    }


def settled_metrics(port: int, *, quiet: float = 0.05, timeout: float = 2.0) -> dict[str, float]:
    """The service's counts once the scans still in flight when wrk stopped are decided: two reads
    ``quiet`` seconds apart that agree (or the last read after ``timeout`` seconds)."""
    last = service_metrics(port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = service_metrics(port)
        if now == last:
            break
        last = now
    return last


def redis_memory(port: int) -> int:
    """Redis's own ``used_memory``, from ``INFO memory``."""
    from redis import Redis

    with Redis(port=port, socket_timeout=10) as client:
        return int(client.info("memory")["used_memory"])


def json_subprocess(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``python -m ARGS`` and read the JSON of its last line."""
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=timeout, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
