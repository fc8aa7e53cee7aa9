"""A long run of new tokens keeps the service's memory flat once its one per-process cache (the tokens it
has seen, bounded) is full: nothing else is kept per scan. On the real Redis store."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.adapters.redis_store import RedisStore
from verifier.adapters.trust_source import JwksTrustSource
from verifier.core.catalogue import Catalogue
from verifier.issuer.mint import citizen_id
from verifier.service.scan import ScanService

pytestmark = pytest.mark.redis

CAPACITY = 500


async def test_new_tokens_beyond_the_seen_bound_keep_memory_flat(
    catalogue: Catalogue, scene: Scene, redis_server: RedisServer
) -> None:
    """Once scans have filled the seen map to its bound and replaced every entry in it once under tracing,
    3,000 more new tokens add no memory that stays. (Tracing starts before the replacing: an entry made
    before tracing began is freed untraced, so its successor would count as growth.)"""
    store = RedisStore.from_url(redis_server.url)
    service = ScanService(catalogue, JwksTrustSource.static(scene.keyring.trust_list()), store, seen_capacity=CAPACITY)
    counter = catalogue.counters["cq-notary-zhixin-01"]
    assert await service.check_store() == ()  # the service decides nothing before the store is checked
    tokens = [scene.driving_licence("SC", licence_no=citizen_id(i)) for i in range(5_000)]
    try:
        for token in tokens[:1_000]:
            assert (await service.scan(counter, token, "notary-driving-licence")).record.decision == "accepted"
        tracemalloc.start()
        for token in tokens[1_000:2_000]:
            await service.scan(counter, token, "notary-driving-licence")
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for token in tokens[2_000:]:
            assert (await service.scan(counter, token, "notary-driving-licence")).record.decision == "accepted"
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        await store.close()
    assert len(service._seen) == CAPACITY
    # A seen entry is about 450 bytes: had the 3,000 scans each kept one, this would be over 1 MB.
    assert grown < 64 * 1024, grown
