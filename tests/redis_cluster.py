"""A real Redis Cluster on free loopback ports, made by the tests with ``redis-cli --cluster create``: six
cluster-enabled redis-servers (each with its append-only file), three primaries with a replica each."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.redis_server import RedisServer


def redis_cli(*args: str, timeout: float = 120) -> str:
    """``redis-cli *args``'s output; a failure fails the test with what it said."""
    binary = shutil.which("redis-cli")
    assert binary is not None, "redis-cli is not installed (apt-get install redis-tools)"
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher) is free too; Redis wants it at most 55535."""
    for _ in range(1000):
        port = random.randint(20_000, 55_535)
        if all(_free(p) for p in (port, port + 10_000)):
            return port
    raise AssertionError("no free pair of ports for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Cluster:
    """Six cluster-enabled redis-servers (each with its append-only file), joined as three primaries with
    a replica each."""

    def __init__(self, root: Path) -> None:
        self.nodes: list[RedisServer] = []
        for n in range(6):
            folder = root / f"node-{n}"
            folder.mkdir()
            options = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            )
            self.nodes.append(RedisServer(folder, cluster_port(), extra_args=options))

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        redis_cli(
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in redis_cli("-p", str(n.port), "cluster", "info") for n in self.nodes):
                return
            time.sleep(0.2)
        raise AssertionError("the cluster did not come up")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:2])

    def primaries(self) -> list[tuple[str, int]]:
        """(node id, slots served) of each primary."""
        out = []
        for line in redis_cli("-p", str(self.nodes[0].port), "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" in fields[2]:
                slots = sum(int(b) - int(a) + 1 for a, _, b in (r.partition("-") for r in fields[8:] if "[" not in r))
                out.append((fields[0], slots))
        return out
