"""The scan service on a real Redis: both provinces' apps and counters, two instances sharing one
store, the one-time-use race, revocation everywhere, and Redis failing under it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.helpers import Client, ClientFactory, assert_problem
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

pytestmark = pytest.mark.redis

NOTARY = ("cq-notary-zhixin-01", "cq-notary-zhixin-02")
SCENARIO = "notary-driving-licence"


@pytest.fixture
async def flushed(redis_server: RedisServer) -> RedisServer:
    """The session Redis, emptied."""
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    return redis_server


async def scan(
    client: Client, scene: Scene, counter: str, token: str, scenario: str = SCENARIO
) -> tuple[int, dict[str, Any]]:
    """Post one scan; the status and the body."""
    body = {"token": token, "scenario": scenario, "operator": "clerk-1", "serial_no": "SN-0001"}
    async with client.post("/v1/scans", json=body, headers=scene.auth(counter)) as response:
        return response.status, await response.json()


async def test_two_instances_answer_as_one(aiohttp_client: ClientFactory, scene: Scene, flushed: RedisServer) -> None:
    """A token accepted on one instance is cached there and replayed on the other."""
    settings = Settings(redis_url=flushed.url, counter_rate=0)
    one = await aiohttp_client(scene.app(settings))
    two = await aiohttp_client(scene.app(settings))
    token = scene.driving_licence("SC")
    status, first = await scan(one, scene, NOTARY[0], token)
    assert (status, first["decision"], first["cached"]) == (200, "accepted", False)
    _, again = await scan(two, scene, NOTARY[0], token)
    assert (again["decision"], again["cached"], again["scan_id"]) == ("accepted", True, first["scan_id"])
    _, other = await scan(two, scene, NOTARY[1], token)
    assert other["decision"] == "rejected"
    assert [r["code"] for r in other["reasons"]] == ["REPLAYED"]


async def test_mutual_recognition_both_ways_on_redis(
    aiohttp_client: ClientFactory, scene: Scene, flushed: RedisServer
) -> None:
    """A Chongqing lawyer's licence is accepted in Sichuan and a Sichuan one in Chongqing."""
    client = await aiohttp_client(scene.app(Settings(redis_url=flushed.url, counter_rate=0)))
    cq = scene.apps["yukuaiban"].present("lawyer-licence", "CQ").token
    sc = scene.apps["tianfu-tongban"].present("lawyer-licence", "SC").token
    _, at_sc = await scan(client, scene, "sc-justice-dept-01", cq, "justice-admin")
    _, at_cq = await scan(client, scene, "cq-justice-bureau-01", sc, "justice-admin")
    assert at_sc["decision"] == at_cq["decision"] == "accepted"
    assert (at_sc["licence"]["issuing_province"], at_cq["licence"]["issuing_province"]) == ("CQ", "SC")


async def test_replay_race_gives_exactly_one_acceptance(
    aiohttp_client: ClientFactory, scene: Scene, flushed: RedisServer
) -> None:
    """Many concurrent posts of one token from two counters on two instances: exactly one acceptance, 100 times over."""
    settings = Settings(redis_url=flushed.url, counter_rate=0)
    instances = [await aiohttp_client(scene.app(settings)) for _ in range(2)]
    for counter in NOTARY:
        scene.auth(counter)
    for round_no in range(100):
        token = scene.driving_licence("SC", licence_no=citizen_id(round_no))
        posts = [scan(instances[i % 2], scene, NOTARY[(i // 2) % 2], token) for i in range(8)]
        results = await asyncio.gather(*posts)
        accepted = [body for status, body in results if body["decision"] == "accepted"]
        assert all(status == 200 for status, _ in results)
        scan_ids = {body["scan_id"] for body in accepted}
        # Several posts may return the one acceptance (same counter, cached), but it is one scan.
        assert len(scan_ids) == 1, f"round {round_no}: {len(scan_ids)} acceptances"
        winner = next(iter(scan_ids))
        rejected = [body for _, body in results if body["decision"] == "rejected"]
        assert all([r["code"] for r in body["reasons"]] == ["REPLAYED"] for body in rejected)
        assert all(body["scan_id"] == winner for body in accepted)


async def test_revocation_reaches_every_instance(
    aiohttp_client: ClientFactory, scene: Scene, flushed: RedisServer
) -> None:
    """A licence revoked on one instance is rejected on the other, even where its acceptance is cached."""
    settings = Settings(redis_url=flushed.url, counter_rate=0)
    one = await aiohttp_client(scene.app(settings))
    two = await aiohttp_client(scene.app(settings))
    token = scene.driving_licence("SC", licence_no=citizen_id(999001))
    _, first = await scan(two, scene, NOTARY[0], token)
    assert first["decision"] == "accepted"
    body = {"type": "driving-licence", "province": "SC", "licence_no": citizen_id(999001), "reason": "吊销"}
    async with one.post("/v1/revocations", json=body, headers=scene.admin()) as response:
        assert response.status == 200
    _, cached = await scan(two, scene, NOTARY[0], token)
    assert (cached["decision"], cached["cached"]) == ("rejected", True)
    assert [r["code"] for r in cached["reasons"]] == ["REVOKED"]
    async with one.post("/v1/revocations", json={**body, "restore": True}, headers=scene.admin()) as response:
        assert response.status == 200
    _, fresh = await scan(one, scene, NOTARY[1], scene.driving_licence("SC", licence_no=citizen_id(999001)))
    assert fresh["decision"] == "accepted"


async def test_stats_measure_recognition_across_instances(
    aiohttp_client: ClientFactory, scene: Scene, flushed: RedisServer
) -> None:
    """/v1/stats counts scans from every instance by type, provinces, route, decision and reason: this
    instance's at once, the other's within the second it takes to add them to Redis."""
    settings = Settings(redis_url=flushed.url, counter_rate=0)
    one = await aiohttp_client(scene.app(settings))
    two = await aiohttp_client(scene.app(settings))
    await scan(one, scene, NOTARY[0], scene.driving_licence("SC"))
    await scan(two, scene, "sc-notary-shudu-01", scene.driving_licence("CQ"))
    await scan(two, scene, "cq-legal-service-01", scene.driving_licence("SC"))  # not a notary office
    deadline = time.monotonic() + 3
    while True:
        async with one.get("/v1/stats", headers=scene.admin()) as response:
            stats = await response.json()
        if stats["total"]["scans"] == 3 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert stats["total"]["scans"] == 3
    assert stats["by_route"]["SC->CQ"] == {"accepted": 1, "rejected": 1}
    assert stats["by_route"]["CQ->SC"] == {"accepted": 1, "rejected": 0}
    assert stats["by_reason"] == {"OUT_OF_PILOT_SCOPE": 1}
    assert stats["by_type"]["driving-licence"]["accepted"] == 2


async def test_redis_down_answers_503_quickly_and_recovers(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Redis stopped: 503 with Retry-After within about a second, never an acceptance; restarted: it recovers."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    _, before = await scan(client, scene, NOTARY[0], scene.driving_licence("SC"))
    assert before["decision"] == "accepted"
    own_redis.stop()
    started = time.perf_counter()
    async with client.post(
        "/v1/scans", json={"token": scene.driving_licence("SC"), "scenario": SCENARIO}, headers=scene.auth(NOTARY[0])
    ) as response:
        elapsed = time.perf_counter() - started
        problem = await assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) > 0
    assert "decision" not in problem
    assert elapsed < 1.5
    async with client.get("/readyz") as response:
        assert response.status == 503
    own_redis.start()
    deadline = time.monotonic() + 5
    status = 0
    after: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, after = await scan(client, scene, NOTARY[0], scene.driving_licence("SC"))
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert (status, after.get("decision")) == (200, "accepted")
    async with client.get("/readyz") as response:
        assert response.status == 200


async def test_paused_redis_does_not_hang_the_counter(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Redis frozen (SIGSTOP): the scan answers 503 within about a second, and works again after SIGCONT."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await scan(client, scene, NOTARY[0], scene.driving_licence("SC"))
    own_redis.pause()
    try:
        started = time.perf_counter()
        status, _ = await scan(client, scene, NOTARY[0], scene.driving_licence("SC"))
        elapsed = time.perf_counter() - started
    finally:
        own_redis.resume()
    assert status == 503
    assert elapsed < 1.5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, body = await scan(client, scene, NOTARY[0], scene.driving_licence("SC"))
        if status == 200:
            break
        await asyncio.sleep(0.1)
    assert (status, body["decision"]) == (200, "accepted")
