"""A counter's key posting junk cannot fill the store: 5,000 distinct junk tokens — malformed, naming a key
nobody knows, or a real token with a broken signature — leave no record, cache entry or claim in Redis,
only their counts; with the counter's rate on, all but its burst are refused before anything is done."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.forge import assemble, split
from tests.helpers import ClientFactory
from tests.redis_server import RedisServer
from tests.scenes import Scene
from verifier.service.settings import Settings
from verifier.web import appkeys

pytestmark = pytest.mark.redis

NOTARY = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"
JUNK = 5_000
BAR = 256 * 1024  # bytes Redis may grow by for all of them


def junk_tokens(scene: Scene, count: int) -> list[str]:
    """Distinct junk of three kinds, in turn: not a JWS; a well-formed token naming an unknown key; a genuine
    token's header and claims with another token's signature."""
    header, claims, _ = split(scene.driving_licence("SC"))
    other_signature = scene.driving_licence("SC").rsplit(".", 1)[1]
    tokens = []
    for n in range(count):
        kind = n % 3
        if kind == 0:
            tokens.append(f"junk-{n}-{secrets.token_urlsafe(16)}")
        elif kind == 1:
            tokens.append(
                assemble({**header, "kid": f"nobody-{n}"}, {**claims, "jti": f"j{n}"}, secrets.token_bytes(64))
            )
        else:
            tokens.append(assemble(header, {**claims, "jti": f"j{n}"}, other_signature))
    return tokens


async def redis_figures(url: str) -> tuple[int, int, int]:
    """Redis's used memory (bytes), its number of keys other than the audit streams, and the bytes those streams
    hold (events that the trail's writer takes away as it writes them)."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        memory: dict[str, Any] = await client.info("memory")
        keys = [key async for key in client.scan_iter(count=1000)]
        streams = [key for key in keys if key.endswith(":audit")]
        in_streams = sum([int(await client.memory_usage(key, samples=0) or 0) for key in streams])
        return int(memory["used_memory"]), len(keys) - len(streams), in_streams
    finally:
        await client.aclose()


async def test_five_thousand_junk_tokens_leave_nothing_but_counts(
    aiohttp_client: ClientFactory, scene: Scene, own_redis: RedisServer
) -> None:
    """With no rate limit at all, 5,000 junk tokens from one key are each answered (200, rejected) and leave no
    record, cache entry or claim: apart from their audit events (waiting in the streams for the trail's writer,
    which takes them away), Redis grows by under 256 KB — the statistics' counters."""
    client = await aiohttp_client(scene.app(Settings(redis_url=own_redis.url, counter_rate=0)))
    await scene.post_scan(client, NOTARY, scene.driving_licence("SC"))  # connections, script and counters warm
    await client.app[appkeys.SERVICE].stats()
    memory_before, keys_before, streams_before = await redis_figures(own_redis.url)
    statuses: dict[int, int] = {}
    for token in junk_tokens(scene, JUNK):
        status, body = await scene.post_scan(client, NOTARY, token)
        statuses[status] = statuses.get(status, 0) + 1
        assert body["decision"] == "rejected"
    await client.app[appkeys.SERVICE].stats()  # this instance's counts added to Redis
    memory_after, keys_after, streams_after = await redis_figures(own_redis.url)
    events = streams_after - streams_before
    grew, added = memory_after - memory_before - events, keys_after - keys_before
    print(
        f"junk flood, no rate: {statuses}, Redis {grew:+,} bytes and {added:+} keys besides {events:,} bytes of events"
    )
    assert statuses == {200: JUNK}
    assert grew < BAR
    assert added <= 1  # at most a new day's statistics hash


async def test_a_junk_flood_is_cut_to_the_counters_burst(scene: Scene, own_redis: RedisServer) -> None:
    """With the default rate (10 scans/s, a burst of 30), a flood of 5,000 junk tokens gets about its burst
    answered; every other post is refused at once with the time to wait and leaves nothing: Redis grows by
    under 256 KB in all, the answered ones' audit events included."""
    from verifier.adapters.redis_store import RedisStore
    from verifier.errors import RateLimitedError
    from verifier.service.scan import ScanService

    store = RedisStore.from_url(own_redis.url)
    service = ScanService(scene.catalogue, _static_trust(scene), store, counter_rate=10, counter_burst=30)
    counter = scene.catalogue.counters[NOTARY]
    try:
        await service.check_store()
        await service.scan(scene.catalogue.counters["cq-notary-yubei-01"], scene.driving_licence("SC"), SCENARIO)
        await service.stats()  # the script loaded and the day's statistics hash made, as on a running service
        memory_before, keys_before, _ = await redis_figures(own_redis.url)
        answered, waits = 0, []
        for token in junk_tokens(scene, JUNK):
            try:
                await service.scan(counter, token, SCENARIO)
                answered += 1
            except RateLimitedError as exc:
                waits.append(exc.retry_after)
        await service.stats()
        memory_after, keys_after, _ = await redis_figures(own_redis.url)
    finally:
        await store.close()
    grew = memory_after - memory_before
    print(f"junk flood, 10/s burst 30: {answered} answered, {len(waits)} refused (429), Redis {grew:+,} bytes")
    assert 30 <= answered <= 30 + 10 * 10  # the burst, and what the rate refills in the flood's few seconds at most
    assert answered + len(waits) == JUNK
    assert 0 < min(waits) <= max(waits) <= 0.1 + 1e-6  # at most one interval to wait
    assert memory_after - memory_before < BAR
    assert keys_after - keys_before <= 1  # the counter's rate key (the safety check's probe key may have expired since)


def _static_trust(scene: Scene) -> Any:
    from verifier.adapters.trust_source import JwksTrustSource

    return JwksTrustSource.static(scene.keyring.trust_list())
