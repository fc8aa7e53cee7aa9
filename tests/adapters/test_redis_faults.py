"""Redis failing under the service: stopped, frozen (SIGSTOP), restarted under an open connection, and
scans cancelled while their script is in flight. Whatever happens, no scan is accepted without the
one-time-use and revocation checks, every answer is the answer to its own request (each scan's licence
is compared with the token it posted), latency stays bounded, and the service recovers by itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import Client, ClientFactory
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.secret import load_secret
from verifier.core.identity import Identities, shard_tag
from verifier.errors import StoreUnavailableError
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings
from verifier.web import appkeys

pytestmark = pytest.mark.redis

NOTARY = ("cq-notary-zhixin-01", "cq-notary-zhixin-02", "cq-notary-yubei-01")
SCENARIO = "notary-driving-licence"
BOUND = 1.5  # seconds: store timeout (1 s) plus slack; no counter waits longer


class Scan:
    """One token of a known licence number, and what was answered for it."""

    def __init__(self, scene: Scene, label: str) -> None:
        self.number = number = citizen_id(int(label))  # a driving licence's number is a citizen ID: the label picks one
        self.token = scene.driving_licence("SC", licence_no=number)
        # The service keys identities with the state folder's secret, which this test process reads too.
        self.tag = shard_tag(Identities(load_secret()).licence("driving-licence", "SC", number))

    def check_own(self, body: dict[str, Any]) -> None:
        """The decision is about this scan's licence, not another request's."""
        assert body["scan_id"].split("-", 1)[0] == self.tag, (self.number, body)
        if body["licence"] is not None:
            assert body["licence"]["licence_no"][-2:] == self.number[-2:], (self.number, body["licence"])


async def post(
    client: Client, scene: Scene, counter: str, token: str, give_up_after: float | None = None
) -> tuple[int, dict[str, Any], float]:
    """Post one scan; status, body and seconds taken."""
    started = time.perf_counter()
    kwargs: dict[str, Any] = {}
    if give_up_after is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=give_up_after)
    async with client.post(
        "/v1/scans", json={"token": token, "scenario": SCENARIO}, headers=scene.auth(counter), **kwargs
    ) as response:
        body = await response.json(content_type=None)
        return response.status, body, time.perf_counter() - started


async def until_ready(client: Client, limit: float = 5.0) -> float:
    """Seconds until /readyz answers 200 again (fails past ``limit``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        async with client.get("/readyz") as response:
            if response.status == 200:
                return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready again within {limit} s")


async def warm_up(client: Client, scene: Scene, prefix: str, count: int = 16) -> None:
    """Connect the store and keep ``count`` scans in flight on it at once, each accepted."""
    scans = [Scan(scene, f"{prefix}{i:04d}") for i in range(count)]
    results = await asyncio.gather(*(post(client, scene, NOTARY[0], s.token) for s in scans))
    for scan, (status, body, _) in zip(scans, results, strict=True):
        assert (status, body["decision"]) == (200, "accepted")
        scan.check_own(body)


async def test_stopped_redis_answers_every_scan_503_in_bounded_time_and_recovers(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Redis killed under a warm connection: 20 concurrent scans each get 503 within the bound, none is accepted;
    restarted, the service is ready again by itself and the same tokens are accepted."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await warm_up(client, scene, "51010001")
    own_redis.stop()
    scans = [Scan(scene, f"51010002{i:04d}") for i in range(20)]
    results = await asyncio.gather(*(post(client, scene, NOTARY[0], s.token) for s in scans))
    assert {status for status, _, _ in results} == {503}
    assert max(elapsed for _, _, elapsed in results) < BOUND
    assert all("decision" not in body for _, body, _ in results)
    own_redis.start()
    assert await until_ready(client) < 3
    for scan, (status, body, _) in zip(
        scans, await asyncio.gather(*(post(client, scene, NOTARY[0], s.token) for s in scans)), strict=True
    ):
        assert (status, body["decision"]) == (200, "accepted")
        scan.check_own(body)


async def test_concurrent_scans_around_a_restart_each_get_their_own_decision(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Scans of different tokens in flight while Redis restarts (a connection left stale): each answer is a
    503 or the decision about its own token — never another request's — and afterwards all are accepted."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await warm_up(client, scene, "51010003")
    scans = [Scan(scene, f"51010004{i:04d}") for i in range(40)]

    async def restart() -> None:
        await asyncio.sleep(0.01)
        own_redis.stop()
        await asyncio.sleep(0.2)
        own_redis.start()

    results, _ = await asyncio.gather(
        asyncio.gather(*(post(client, scene, NOTARY[i % 2], s.token) for i, s in enumerate(scans))), restart()
    )
    for scan, (status, body, elapsed) in zip(scans, results, strict=True):
        assert status in (200, 503)
        assert elapsed < BOUND + 0.5
        if status == 200:
            scan.check_own(body)
    await until_ready(client)
    retried = await asyncio.gather(*(post(client, scene, NOTARY[i % 2], s.token) for i, s in enumerate(scans)))
    for scan, (status, body, _) in zip(scans, retried, strict=True):
        assert (status, body.get("decision")) == (200, "accepted"), body
        scan.check_own(body)


async def test_frozen_redis_then_resumed_delivers_no_stale_reply_to_a_later_request(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Redis frozen with 16 scans in flight: each gets 503 within the bound. On SIGCONT Redis runs the queued
    scripts and sends their replies, which must not reach later requests: once the service has checked the
    store again, 32 new scans each get their own decision."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await warm_up(client, scene, "51010005")
    frozen = [Scan(scene, f"51010006{i:04d}") for i in range(16)]
    own_redis.pause()
    try:
        results = await asyncio.gather(*(post(client, scene, NOTARY[0], s.token) for s in frozen))
    finally:
        own_redis.resume()
    assert {status for status, _, _ in results} == {503}
    assert max(elapsed for _, _, elapsed in results) < BOUND
    await until_ready(client)  # a store lost is checked again before anything is decided on it
    fresh = [Scan(scene, f"51010007{i:04d}") for i in range(32)]
    everything = fresh + frozen
    answers = await asyncio.gather(*(post(client, scene, NOTARY[0], s.token) for s in everything))
    for scan, (status, body, _) in zip(everything, answers, strict=True):
        assert (status, body["decision"]) == (200, "accepted"), body
        scan.check_own(body)


async def test_a_scan_cancelled_while_its_script_waits_is_applied_whole_or_not_at_all(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """A scan cancelled (asyncio) while Redis is frozen: afterwards its token is accepted at most once across
    counters, a revocation still stops it, and the connection it used answers nobody else."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    service = client.app[appkeys.SERVICE]
    counters = client.app[appkeys.SERVICE].catalogue.counters
    await warm_up(client, scene, "51010008", count=4)
    cancelled = [Scan(scene, f"51010009{i:04d}") for i in range(8)]
    own_redis.pause()
    try:
        tasks = [asyncio.ensure_future(service.scan(counters[NOTARY[0]], s.token, SCENARIO)) for s in cancelled]
        await asyncio.sleep(0.2)  # the scripts are written to the frozen server and waiting for replies
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        own_redis.resume()
    assert all(isinstance(o, asyncio.CancelledError | StoreUnavailableError) for o in outcomes), outcomes
    accepted_ids: dict[str, set[str]] = {s.number: set() for s in cancelled}
    for counter in NOTARY:
        answers = await asyncio.gather(*(post(client, scene, counter, s.token) for s in cancelled))
        for scan, (status, body, _) in zip(cancelled, answers, strict=True):
            assert status == 200
            scan.check_own(body)
            if body["decision"] == "accepted":
                accepted_ids[scan.number].add(body["scan_id"])
    assert all(len(ids) == 1 for ids in accepted_ids.values()), accepted_ids
    victim = cancelled[0]
    revoke = {"type": "driving-licence", "province": "SC", "licence_no": victim.number, "reason": "test"}
    async with client.post("/v1/revocations", json=revoke, headers=scene.admin()) as response:
        assert response.status == 200
    for counter in NOTARY:
        _, body, _ = await post(client, scene, counter, victim.token)
        assert body["decision"] == "rejected"


async def test_a_client_that_hangs_up_while_redis_is_frozen_gets_nothing_accepted_twice(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """Counters give up (disconnect) on scans while Redis is frozen; after SIGCONT each of those tokens is
    accepted at most once across counters, and concurrent scans of other tokens get their own decisions."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await warm_up(client, scene, "51010010", count=4)
    abandoned = [Scan(scene, f"51010011{i:04d}") for i in range(8)]
    own_redis.pause()
    try:
        gave_up = await asyncio.gather(
            *(post(client, scene, NOTARY[0], s.token, give_up_after=0.2) for s in abandoned), return_exceptions=True
        )
    finally:
        own_redis.resume()
    assert all(isinstance(o, TimeoutError) for o in gave_up), gave_up
    await asyncio.sleep(BOUND)  # the abandoned handlers finish (503 to nobody) before the checks
    others = [Scan(scene, f"51010012{i:04d}") for i in range(16)]
    accepted: dict[str, set[str]] = {s.number: set() for s in abandoned}
    for counter in NOTARY:
        answers = await asyncio.gather(*(post(client, scene, counter, s.token) for s in abandoned + others))
        for scan, (status, body, _) in zip(abandoned + others, answers, strict=True):
            assert status == 200
            scan.check_own(body)
            if body["decision"] == "accepted":
                accepted.setdefault(scan.number, set()).add(body["scan_id"])
    assert all(len(ids) == 1 for ids in accepted.values()), accepted


async def test_a_burst_beyond_the_connection_pool_waits_instead_of_failing(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """300 scans arriving at once on one instance (all queued on its one Redis connection) are all decided,
    none refused with 503 while Redis is well."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    scans = [Scan(scene, f"51010013{i:04d}") for i in range(300)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:  # no client-side cap

        async def one(i: int, scan: Scan) -> tuple[int, dict[str, Any]]:
            body = {"token": scan.token, "scenario": SCENARIO}
            async with session.post(client.make_url("/v1/scans"), json=body, headers=scene.auth(NOTARY[i % 3])) as r:
                return r.status, await r.json(content_type=None)

        answers = await asyncio.gather(*(one(i, s) for i, s in enumerate(scans)))
    for scan, (status, body) in zip(scans, answers, strict=True):
        assert (status, body.get("decision")) == (200, "accepted"), body
        scan.check_own(body)


async def test_one_time_use_survives_a_restart_of_a_redis_with_its_append_only_file(
    aiohttp_client: ClientFactory, scene: Scene, tmp_path: Path
) -> None:
    """Redis with its append-only file (appendfsync always), as the compose file runs it, is killed and
    restarted: a code accepted before is REPLAYED after it at another counter, and a revocation made
    before still holds."""
    compose = (Path(__file__).parents[2] / "docker-compose.yml").read_text(encoding="utf-8")
    assert '"--appendonly", "yes"' in compose
    redis = RedisServer(tmp_path, extra_args=("--appendonly", "yes", "--appendfsync", "always"))
    redis.start()
    try:
        client = await aiohttp_client(scene.app(Settings(redis_url=redis.url, counter_rate=0)))
        used, revoked = Scan(scene, "510100140001"), Scan(scene, "510100140002")
        assert (await post(client, scene, NOTARY[0], used.token))[1]["decision"] == "accepted"
        revoke = {"type": "driving-licence", "province": "SC", "licence_no": revoked.number, "reason": "test"}
        async with client.post("/v1/revocations", json=revoke, headers=scene.admin()) as response:
            assert response.status == 200
        redis.stop()
        redis.start()
        await until_ready(client)
        _, replay, _ = await post(client, scene, NOTARY[1], used.token)
        assert [r["code"] for r in replay["reasons"]] == ["REPLAYED"]
        _, stopped, _ = await post(client, scene, NOTARY[1], revoked.token)
        assert [r["code"] for r in stopped["reasons"]] == ["REVOKED"]
    finally:
        redis.stop()


async def test_a_redis_that_comes_back_unsafe_is_checked_before_anything_is_decided_on_it(
    aiohttp_client: ClientFactory, scene: Scene, tmp_path: Path
) -> None:
    """Codes accepted on a safe Redis; Redis comes back empty, without its append-only file and evicting: the
    other instance, which had checked the old Redis, decides nothing on the new one — every code shown again
    is 503, never accepted a second time — and /readyz names what is wrong with it."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        settings = Settings(redis_url=redis.url, counter_rate=0, store_check_seconds=60)  # no periodic check in between
        one = await aiohttp_client(scene.app(settings))
        two = await aiohttp_client(scene.app(settings))
        codes = [Scan(scene, f"51010009{i:04d}") for i in range(8)]
        for code in codes:
            assert (await post(one, scene, NOTARY[0], code.token))[1]["decision"] == "accepted"
        redis.stop()
        redis.extra_args = ("--appendonly", "no", "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
        (tmp_path / "appendonlydir").rename(tmp_path / "old-appendonlydir")  # it comes back empty
        redis.start()
        again = [await post(two, scene, NOTARY[1], code.token) for code in codes]
        assert [status for status, _, _ in again] == [503] * len(codes), again
        await asyncio.sleep(0.6)  # the periodic check, every half second while anything is wrong
        async with two.get("/readyz") as response:
            body = await response.json(content_type=None)
        assert response.status == 503
        assert {c["check"] for c in body["checks"]} == {"eviction", "persistence"}
        later = [await post(two, scene, NOTARY[2], code.token) for code in codes]
        assert {status for status, _, _ in later} == {503}
    finally:
        redis.stop()
