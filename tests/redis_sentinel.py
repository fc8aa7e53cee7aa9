"""Redis behind Sentinel on free loopback ports: one primary, two replicas and three sentinels, as the tests
start them (the ``deployment`` fixture)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from tests.redis_server import RedisServer, free_port

SERVICE = "cy"


class SentinelProcess:
    """``redis-server sentinel.conf --sentinel`` on a free port, watching ``SERVICE`` with a quorum of 2."""

    def __init__(self, directory: Path, primary_port: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = directory / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
            f"sentinel parallel-syncs {SERVICE} 2\n",
            encoding="utf-8",
        )
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = subprocess.Popen(
            [binary, str(self.config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Deployment:
    """A primary, two replicas and three sentinels."""

    primary: RedisServer
    replicas: list[RedisServer]
    sentinels: list[SentinelProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{SERVICE}"

    async def primary_port(self) -> int:
        """The primary's port as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            client = Redis(port=sentinel.port, decode_responses=True, socket_timeout=1)
            try:
                _, port = await client.execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "get-master-addr-by-name", SERVICE
                )
                return int(port)
            except OSError:
                continue
            finally:
                await client.aclose()
        raise AssertionError("no sentinel answers")


async def replicating(deployment: Deployment, limit: float = 15) -> None:
    """Wait until both replicas are online (past their first full copy)."""
    client = Redis(port=deployment.primary.port, decode_responses=True)
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            info = await client.info("replication")
            if sum(1 for k, v in info.items() if k.startswith("slave") and v["state"] == "online") == 2:
                return
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    raise AssertionError("the replicas did not come online")


@contextmanager
def started_deployment(tmp_path: Path) -> Iterator[Deployment]:
    """A deployment started in ``tmp_path`` (its replicas may still be making their first copy); everything
    stopped at the end."""
    (tmp_path / "primary").mkdir()
    primary = RedisServer(tmp_path / "primary")
    primary.start()
    replicas = []
    for name in ("replica-1", "replica-2"):
        (tmp_path / name).mkdir()
        replica = RedisServer(tmp_path / name, extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
        replica.start()
        replicas.append(replica)
    deployment = Deployment(primary, replicas)
    try:
        deployment.sentinels = [SentinelProcess(tmp_path / f"sentinel-{i}", primary.port) for i in range(3)]
        yield deployment
    finally:
        for sentinel in deployment.sentinels:
            sentinel.stop()
        for server in (primary, *replicas):
            server.stop()
