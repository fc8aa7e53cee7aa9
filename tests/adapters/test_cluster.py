"""Redis Cluster (``redis+cluster://``) through redis-py's cluster client, on a real local cluster the test
creates with ``redis-cli --cluster create``: three primaries, each with a replica. A scan's keys share
one slot; one-time use, re-scans, GET /v1/scans/{id}, revocation, statistics and readiness work; a
slot moved under load (``redis-cli --cluster reshard``) loses no scan and accepts no code twice."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.helpers import ClientFactory
from tests.redis_cluster import Cluster, redis_cli
from tests.scenes import Scene
from verifier.adapters.redis_store import RedisStore
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

pytestmark = pytest.mark.redis

NOTARY = ("cq-notary-zhixin-01", "cq-notary-zhixin-02", "cq-notary-yubei-01")


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
            redis_cli,
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
