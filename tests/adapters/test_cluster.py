"""Redis Cluster (``redis+cluster://``) through redis-py's cluster client, on a real local cluster the test
creates with ``redis-cli --cluster create``: three primaries, each with a replica. A scan's keys share
one slot; one-time use, re-scans, GET /v1/scans/{id}, revocation, statistics and readiness work; a
slot moved under load (``redis-cli --cluster reshard``) loses no scan and accepts no code twice."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ClientFactory
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.redis_store import RedisStore
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

pytestmark = pytest.mark.redis

NOTARY = ("cq-notary-zhixin-01", "cq-notary-zhixin-02", "cq-notary-yubei-01")


def _cli(*args: str, timeout: float = 120) -> str:
    binary = shutil.which("redis-cli")
    assert binary is not None, "redis-cli is not installed (apt-get install redis-tools)"
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _cluster_port() -> int:
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
            self.nodes.append(RedisServer(folder, _cluster_port(), extra_args=options))

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        _cli(
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in _cli("-p", str(n.port), "cluster", "info") for n in self.nodes):
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
        for line in _cli("-p", str(self.nodes[0].port), "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" in fields[2]:
                slots = sum(int(b) - int(a) + 1 for a, _, b in (r.partition("-") for r in fields[8:] if "[" not in r))
                out.append((fields[0], slots))
        return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def code_of(body: dict[str, Any]) -> str:
    return str(body["reasons"][0]["code"]) if body.get("reasons") else body.get("decision", "?")


async def test_the_store_reaches_every_primary_and_finds_the_cluster_safe(cluster: Cluster) -> None:
    """Every primary has its append-only file and takes a probe write: no finding."""
    store = RedisStore.from_url(cluster.url)
    try:
        health = await store.health()
    finally:
        await store.close()
    assert health.findings == ()
    assert health.identity is not None
    assert health.identity.count(",") == 2  # three primaries' run ids


async def test_one_time_use_rescans_revocation_and_stats_on_a_cluster(
    aiohttp_client: ClientFactory, scene: Scene, cluster: Cluster
) -> None:
    """Two instances on the cluster: exactly one acceptance per code in a race, a re-scan is cached and
    found by id, a revocation reaches the other instance, and the statistics count every scan once."""
    settings = Settings(redis_url=cluster.url, counter_rate=0)
    one, two = [await aiohttp_client(scene.app(settings)) for _ in range(2)]
    for counter in NOTARY:
        scene.auth(counter)
    accepted = 0
    for n in range(20):
        token = scene.driving_licence("SC", licence_no=citizen_id(1_300_000 + n))
        answers = await asyncio.gather(*(scene.post_scan((one, two)[i % 2], NOTARY[i % 3], token) for i in range(6)))
        assert {status for status, _ in answers} == {200}
        accepted += sum(1 for _, body in answers if body["decision"] == "accepted" and not body["cached"])
    assert accepted == 20

    token = scene.driving_licence("SC", licence_no=citizen_id(9_000_001))
    _, first = await scene.post_scan(one, NOTARY[0], token)
    _, again = await scene.post_scan(two, NOTARY[0], token)
    assert (again["cached"], again["scan_id"]) == (True, first["scan_id"])
    async with two.get(f"/v1/scans/{first['scan_id']}", headers=scene.auth(NOTARY[0])) as response:
        assert (response.status, (await response.json())["decision"]) == (200, "accepted")

    revoke = {"type": "driving-licence", "province": "SC", "licence_no": citizen_id(9_000_002), "reason": "test"}
    async with one.post("/v1/revocations", json=revoke, headers=scene.admin()) as response:
        assert response.status == 200
    _, revoked = await scene.post_scan(two, NOTARY[1], scene.driving_licence("SC", licence_no=citizen_id(9_000_002)))
    assert code_of(revoked) == "REVOKED"

    await asyncio.sleep(1.2)  # the other instance's counts are added within a second
    async with one.get("/v1/stats", headers=scene.admin()) as response:
        stats = await response.json()
    # Each code: three counters decide it once each (one accepts, two are REPLAYED), their second posts are
    # re-scans; then one code decided and re-scanned, one revoked. Every answer is counted, re-scans apart.
    print(json.dumps(stats["total"]))
    assert stats["total"]["scans"] == 20 * 6 + 3
    assert sum(stats["by_kind"]["first"].values()) == 20 * 3 + 2
    async with one.get("/readyz") as response:
        assert response.status == 200, await response.text()


async def test_a_slot_moved_under_load_loses_no_scan_and_accepts_no_code_twice(
    aiohttp_client: ClientFactory, scene: Scene, cluster: Cluster
) -> None:
    """While 1,000 slots move from one primary to another, fresh codes keep being scanned: every scan gets an
    answer, and every code accepted during the move is REPLAYED at another counter afterwards."""
    client = await aiohttp_client(scene.app(Settings(redis_url=cluster.url, counter_rate=0)))
    (source, _), (target, before) = sorted(cluster.primaries(), key=lambda p: -p[1])[:2]
    reshard = asyncio.create_task(
        asyncio.to_thread(
            _cli,
            "--cluster",
            "reshard",
            f"127.0.0.1:{cluster.nodes[0].port}",
            "--cluster-from",
            source,
            "--cluster-to",
            target,
            "--cluster-slots",
            "1000",
            "--cluster-yes",
            timeout=300,
        )
    )
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    n = 0
    started = time.monotonic()
    while not reshard.done() or n < 200:
        tokens = [scene.driving_licence("SC", licence_no=citizen_id(1_400_000 + n + i)) for i in range(10)]
        n += 10
        answers = await asyncio.gather(*(scene.post_scan(client, NOTARY[0], t) for t in tokens))
        for token, (status, body) in zip(tokens, answers, strict=True):
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200 and body["decision"] == "accepted":
                accepted.append(token)
    await reshard
    moved_in = time.monotonic() - started
    assert dict(cluster.primaries())[target] == before + 1000  # the slots did move
    again = [await scene.post_scan(client, NOTARY[1], token) for token in accepted]
    twice = sum(1 for status, body in again if status == 200 and body["decision"] == "accepted")
    print(json.dumps({"scans": n, "statuses": statuses, "accepted": len(accepted), "accepted_twice": twice,
                      "seconds": round(moved_in, 1)}))  # fmt: skip
    assert sum(statuses.values()) == n  # every scan answered
    assert set(statuses) <= {200, 503}
    assert twice == 0
    assert all(code_of(body) == "REPLAYED" for _, body in again)
