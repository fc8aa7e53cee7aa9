"""The trail's writer on a real Redis: an event is acknowledged (and leaves its stream) only once its row is
committed, so while PostgreSQL is down the events wait — pending with the writer that took them, counted in
/readyz (still 200) and /metrics — and are written once it is back; a batch written twice is one row each; a
dead writer's events are claimed by another after the claim time; and each stream keeps about AUDIT_BOUND
entries, a trimmed event that a writer held being forgotten, not retried forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.audit.streams import backlog, pending, until
from tests.helpers import Client, ClientFactory
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer
from tests.scenes import Scene
from tests.service.desk import Desk
from verifier.adapters.audit.trail import AuditTrail, engine_url
from verifier.adapters.audit.writer import TrailWriter
from verifier.adapters.redis_audit import RedisAuditFeed
from verifier.adapters.redis_store import AUDIT_BOUND, RedisStore
from verifier.issuer.mint import citizen_id
from verifier.service.ports import scan_tag
from verifier.service.settings import Settings
from verifier.web import app as web_app
from verifier.web.metrics import metric_total

pytestmark = pytest.mark.redis

NOTARY = "cq-notary-zhixin-01"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the session's Redis, emptied first."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis: Redis, redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    """The store on that Redis."""
    opened = RedisStore.from_url(redis_server.url, allow_volatile=True)
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def trail(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditTrail]:
    """An empty trail on SQLite, then on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    opened = AuditTrail(engine_url(url, tmp_path))
    yield opened
    await opened.close()


async def _audit_ready(client: Client) -> dict[str, Any]:
    """/readyz's audit part, the answer being 200."""
    async with client.get("/readyz") as response:
        body = await response.json()
        assert response.status == 200, body
        return dict(body["audit"])


async def _metric_backlog(client: Client) -> float:
    async with client.get("/metrics") as response:
        return metric_total(await response.text(), "verifier_audit_backlog")


@pytest.fixture
def audit_watched_often(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app reads the backlog into its metrics every 0.1 s instead of every few seconds."""
    monkeypatch.setattr(web_app, "AUDIT_WATCH_SECONDS", 0.1)


@pytest.mark.postgres
@pytest.mark.usefixtures("audit_watched_often")
async def test_events_wait_while_postgres_is_down_and_are_written_once_it_is_back(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer, own_postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL stopped: ten scans answered 200, their events still in the streams, those the writer took
    pending with it; /readyz stays 200, saying the backlog of 10 and since when writing fails, and /metrics
    has verifier_audit_backlog 10. PostgreSQL back: 11 rows, the streams empty, nothing pending, backlog 0."""
    settings = Settings(redis_url=own_redis.url, audit_url=own_postgres.url, counter_rate=0, state_dir=str(tmp_path))
    client = await aiohttp_client(scene.app(settings))
    trail = AuditTrail(engine_url(own_postgres.url, tmp_path))
    redis = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        await scene.post_scan(client, NOTARY, scene.driving_licence("SC", licence_no=citizen_id(3_100_000)))
        await until(lambda: _count_is(trail, 1), "the first row")

        own_postgres.stop()
        for n in range(10):
            status, body = await scene.post_scan(
                client, NOTARY, scene.driving_licence("SC", licence_no=citizen_id(3_100_001 + n))
            )
            assert (status, body["decision"]) == (200, "accepted")
        await until(lambda: _failing(client), "the writer to find the trail away")
        assert await pending(redis) > 0  # taken by the writer, not acknowledged: nothing committed
        assert await backlog(redis) == 10
        audit = await _audit_ready(client)
        assert (audit["backlog"], audit["writer"]) == (10, "this instance")
        await until(lambda: _metric_is(client, 10), "verifier_audit_backlog 10")

        own_postgres.start()
        await until(lambda: _drained(trail, redis, 11), "11 rows and empty streams")
        assert await pending(redis) == 0
        await until(lambda: _metric_is(client, 0), "verifier_audit_backlog 0")
        audit = await _audit_ready(client)
        assert (audit["backlog"], audit["failing_since"]) == (0, None)
    finally:
        await trail.close()
        await redis.aclose()


async def _count_is(trail: AuditTrail, count: int) -> bool:
    return await trail.count() == count


async def _failing(client: Client) -> bool:
    return (await _audit_ready(client))["failing_since"] is not None


async def _metric_is(client: Client, value: float) -> bool:
    return await _metric_backlog(client) == value


async def _drained(trail: AuditTrail, redis: Redis, rows: int) -> bool:
    return await trail.count() == rows and await backlog(redis) == 0


async def test_a_dead_writers_events_are_claimed_and_written_once(
    scene: Scene, store: RedisStore, redis: Redis, trail: AuditTrail
) -> None:
    """Writer A takes six events and writes them, then dies before acknowledging: they stay pending with A.
    Writer B, once they have been idle for the claim time, claims them (XAUTOCLAIM), writes them again — the
    trail keeps one row each — and acknowledges: the streams are empty and nothing is pending."""
    await trail.migrate()  # before A takes anything: the claim time runs from the taking
    desk = Desk(scene, store)
    for n in range(3):
        token = scene.driving_licence("SC", licence_no=citizen_id(3_200_000 + n))
        await desk.scan(token)
        await desk.scan(token)  # a re-scan: an answer, and an event, of its own
    dead = RedisAuditFeed(store, consumer="writer-a", claim_idle=1)
    taken = await dead.take(100)
    assert len(taken) == 6
    await trail.write([event for _, event in taken], scene.catalogue)
    assert await pending(redis, "writer-a") == 6

    alive = RedisAuditFeed(store, consumer="writer-b", claim_idle=1)
    writer = TrailWriter(alive, trail, lambda: scene.catalogue)
    assert await writer.step() == 0  # not idle long enough yet: A's events are left to A
    await asyncio.sleep(1.1)
    async with asyncio.timeout(15):  # a write that never succeeds is retried: a failure here, not a hang
        assert await writer.step() == 6
    assert await trail.count() == 6
    assert await pending(redis) == 0
    assert await backlog(redis) == 0
    assert await writer.step() == 0


async def test_each_stream_keeps_about_audit_bound_entries(scene: Scene, store: RedisStore, redis: Redis) -> None:
    """A stream already at AUDIT_BOUND + 1,000 entries (no writer for a long while): the next answer's event is
    appended and the stream trimmed back to about AUDIT_BOUND, oldest first. The oldest event, taken by a
    writer that then died, was trimmed while pending: the next writer's claim drops it from the pending list
    (XAUTOCLAIM names it deleted) and hands out nothing for it, rather than holding it pending forever."""
    desk = Desk(scene, store)
    token = scene.driving_licence("SC", licence_no=citizen_id(3_300_000))
    first = await desk.scan(token)
    stream = f"cy:{{{scan_tag(first.record.scan_id)}}}:audit"
    assert len(await RedisAuditFeed(store, consumer="writer-a").take(10)) == 1  # and writer-a dies
    entries: list[tuple[str, dict[str, str]]] = await redis.xrange(stream)  # type: ignore[assignment]
    [(oldest, fields)] = entries
    pipe = redis.pipeline(transaction=False)
    for _ in range(AUDIT_BOUND + 1000):
        pipe.xadd(stream, fields)  # type: ignore[arg-type]
    await pipe.execute()

    again = await desk.scan(token)
    assert again.cached
    length = await redis.xlen(stream)
    assert AUDIT_BOUND <= length < AUDIT_BOUND + 200  # MAXLEN ~ trims whole nodes of 100 entries
    entries = await redis.xrevrange(stream, count=1)  # type: ignore[assignment]
    [(_, newest)] = entries
    assert newest["k"] == "1"  # the re-scan's event, kept
    assert await pending(redis, "writer-a") == 1  # still pending, though trimmed from the stream

    claimer = RedisAuditFeed(store, consumer="writer-b", claim_idle=0.001)
    await asyncio.sleep(0.01)
    taken = await claimer.take(10)
    assert taken  # the newer events of the stream, handed out as ever
    assert f"{stream}/{oldest}" not in {ref for ref, _ in taken}
    assert await pending(redis, "writer-a") == 0
