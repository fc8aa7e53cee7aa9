"""Statistics counted in each instance and added to Redis once a second (verifier.adapters.redis_stats),
on a real redis-server: several instances add up exactly, a clean stop loses nothing, and counts made
while Redis cannot take them wait and are added once it can."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.redis_server import RedisServer
from verifier.adapters.redis_store import RedisStore
from verifier.core.stats import FIRST, RESCAN, answer_fields
from verifier.errors import StoreUnavailableError

pytestmark = pytest.mark.redis
LABELS = "driving-licence|SC|CQ|notary-driving-licence"
ACCEPTED = f"scans|{LABELS}|accepted|{FIRST}"


def _scan(store: RedisStore, kind: str = FIRST) -> None:
    """What the service counts for one accepted answer."""
    minute = time.strftime("%Y%m%d%H%M", time.gmtime())
    store.count(answer_fields("accepted", (), LABELS, kind, minute))


async def test_instances_add_up_exactly_and_a_clean_stop_loses_nothing(own_redis: RedisServer) -> None:
    """Three instances each decide 50 scans and re-scan 10 of them, and stop: the totals are exact."""
    stores = [RedisStore.from_url(own_redis.url, stats_interval=3600) for _ in range(3)]  # no flush but at stop
    for store in stores:
        for _ in range(50):
            _scan(store)
        for _ in range(10):
            _scan(store, RESCAN)
    for store in stores:
        await store.close()
    reader = RedisStore.from_url(own_redis.url)
    try:
        stats = await reader.stats()
    finally:
        await reader.close()
    assert stats[ACCEPTED] == 150
    assert stats[f"scans|{LABELS}|accepted|{RESCAN}"] == 30
    assert sum(v for k, v in stats.items() if k.startswith("minute|")) == 180


async def test_counts_wait_while_redis_cannot_take_them(own_redis: RedisServer) -> None:
    """Counts made before Redis went down are neither lost nor doubled: the flush fails, they wait, and the
    next flush once Redis is back adds each exactly once. (A flush whose answers are lost — Redis frozen
    past the timeout with the commands already sent — may count twice: see the module's docstring.)"""
    store = RedisStore.from_url(own_redis.url, op_timeout=0.3, stats_interval=3600)
    try:
        for _ in range(20):
            _scan(store)
        own_redis.stop()
        try:
            with pytest.raises(StoreUnavailableError):
                await store.stats()
        finally:
            own_redis.start()  # with its append-only file: what was added before is still there
        stats = await store.stats()
    finally:
        await store.close()
    assert stats[ACCEPTED] == 20


async def test_counts_reach_redis_within_a_second_without_a_read(own_redis: RedisServer, tmp_path: Path) -> None:
    """An instance that nobody asks for statistics still adds its counts within about a second."""
    writer = RedisStore.from_url(own_redis.url, stats_interval=0.2)
    reader = RedisStore.from_url(own_redis.url, stats_interval=3600)
    try:
        _scan(writer)
        await asyncio.sleep(0.6)
        stats = await reader.stats()
    finally:
        await writer.close()
        await reader.close()
    assert stats.get(ACCEPTED) == 1
