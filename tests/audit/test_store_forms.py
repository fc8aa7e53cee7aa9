"""The trail on every form of the store: the in-process store, one Redis, Redis behind Sentinel and a Redis
Cluster. Scans through the app leave one row per answer in the trail (SQLite in the state folder); on a
cluster each answer's event waits in the stream of its scan's hash tag, the slot that holds the scan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from tests.helpers import Client, ClientFactory
from tests.redis_cluster import Cluster
from tests.redis_sentinel import Deployment
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.audit.schema import answers
from verifier.adapters.audit.trail import AuditTrail, engine_url
from verifier.adapters.audit.writer import TrailWriter
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.redis_audit import RedisAuditFeed
from verifier.adapters.redis_store import RedisStore
from verifier.core.identity import SHARD_TAGS
from verifier.issuer.mint import citizen_id
from verifier.service.ports import audit_event_from_stream, scan_tag
from verifier.service.settings import Settings

NOTARY, NOTARY_2 = "cq-notary-zhixin-01", "cq-notary-zhixin-02"
Answer = tuple[str, str, bool, str]  # scan id, counter, cached, decision


async def _redis_url(request: pytest.FixtureRequest) -> str | None:
    """The URL of the store form the test runs on (None: the in-process store); one Redis emptied first."""
    form = request.param
    if form == "memory":
        return None
    if form == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = Redis.from_url(server.url)
        await client.flushdb()
        await client.aclose()
        return server.url
    if form == "sentinel":
        deployment: Deployment = request.getfixturevalue("deployment")
        return deployment.url
    cluster: Cluster = request.getfixturevalue("cluster")
    return cluster.url


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("sentinel", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
async def form(request: pytest.FixtureRequest) -> str | None:
    """Each store form in turn: its Redis URL (None: the in-process store)."""
    return await _redis_url(request)


@pytest.fixture
async def trail(tmp_path: Path) -> AsyncIterator[AuditTrail]:
    """The trail the app writes in its state folder, read by the test."""
    opened = AuditTrail(engine_url(None, tmp_path))
    yield opened
    await opened.close()


async def _ready(client: Client, limit: float = 20) -> None:
    """Until /readyz answers 200 (Sentinel names its primary within moments of starting)."""
    deadline = time.monotonic() + limit
    while True:
        async with client.get("/readyz") as response:
            if response.status == 200:
                return
            assert time.monotonic() < deadline, await response.text()
        await asyncio.sleep(0.2)


async def _scan_a_few(scene: Scene, client: Client, first: int) -> list[Answer]:
    """Four licences, each accepted, re-scanned at the same counter (cached) and shown at another (REPLAYED),
    and last one token that is not one: 13 answers."""
    said: list[Answer] = []
    tokens = [scene.driving_licence("SC", licence_no=citizen_id(first + n)) for n in range(4)]
    for token in [*tokens, "not-a-token"]:
        for counter in (NOTARY, NOTARY, NOTARY_2) if token != "not-a-token" else (NOTARY,):
            status, body = await scene.post_scan(client, counter, token)
            assert status == 200, body
            said.append((body["scan_id"], counter, body["cached"], body["decision"]))
    return said


async def _rows(trail: AuditTrail, count: int, limit: float = 20) -> list[Answer]:
    """The trail's answers once it holds ``count`` rows."""
    deadline = time.monotonic() + limit
    while (await trail.count()) < count:
        assert time.monotonic() < deadline, f"the trail holds {await trail.count()} rows, not {count}"
        await asyncio.sleep(0.2)
    c = answers.c
    async with trail.engine.connect() as conn:
        found = await conn.execute(answers.select().with_only_columns(c.scan_id, c.counter, c.cached, c.decision))
        return [(scan_id, counter, bool(cached), decision) for scan_id, counter, cached, decision in found]


async def test_every_answer_is_in_the_trail_on_every_store_form(
    aiohttp_client: ClientFactory, scene: Scene, form: str | None, trail: AuditTrail, tmp_path: Path
) -> None:
    """Thirteen answers through the app (accepted, cached, REPLAYED, a malformed token): the same thirteen in the
    trail, each once."""
    settings = Settings(redis_url=form, counter_rate=0, state_dir=str(tmp_path))
    client = await aiohttp_client(scene.app(settings, store=MemoryStore() if form is None else None))
    await _ready(client)
    said = await _scan_a_few(scene, client, 2_100_000)
    assert sorted(await _rows(trail, len(said))) == sorted(said)
    assert {decision for _, _, _, decision in said} == {"accepted", "rejected"}
    assert any(cached for _, _, cached, _ in said)


@pytest.mark.redis
async def test_on_a_cluster_each_event_waits_in_its_scans_slot(
    aiohttp_client: ClientFactory, scene: Scene, cluster: Cluster, trail: AuditTrail, tmp_path: Path
) -> None:
    """With the writing left to a separate writer, every answer's event is in the stream of its scan's hash tag
    — the slot of the scan's record, on the node that holds it — and a writer then takes them all to the trail,
    leaving the streams empty."""
    settings = Settings(redis_url=cluster.url, counter_rate=0, state_dir=str(tmp_path), separate_audit_writer=True)
    client = await aiohttp_client(scene.app(settings))
    said = await _scan_a_few(scene, client, 2_200_000)
    store = RedisStore.from_url(cluster.url)
    try:
        found: dict[str, list[str]] = {}  # scan id -> the streams its answers' events are in
        for tag in SHARD_TAGS:
            stream = f"cy:{{{tag}}}:audit"
            for entry_id, fields in await store.command("XRANGE", stream, "-", "+"):
                event = audit_event_from_stream(stream, entry_id, _fields(fields))
                found.setdefault(event.scan_id, []).append(stream)
        assert sum(map(len, found.values())) == len(said)
        for scan_id, streams in found.items():
            assert set(streams) == {f"cy:{{{scan_tag(scan_id)}}}:audit"}
            record = f"cy:{{{scan_tag(scan_id)}}}:s:{scan_id}"
            assert key_slot(streams[0].encode()) == key_slot(record.encode())
            if scan_id != said[-1][0]:  # the malformed token's answer is given, never stored
                assert await store.command("EXISTS", record) == 1  # routed by its slot: the stream's node has it
        assert len({scan_tag(scan_id) for scan_id in found}) > 1  # the answers spread over several slots

        writer = TrailWriter(RedisAuditFeed(store), trail, lambda: scene.catalogue)
        while await writer.step():
            pass
        assert sorted(await _rows(trail, len(said), limit=0)) == sorted(said)
        assert await RedisAuditFeed(store).backlog() == 0
    finally:
        await store.close()


def _fields(raw: Any) -> dict[str, str]:
    """A stream entry's fields: a flat list (RESP2) or a map."""
    return raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
