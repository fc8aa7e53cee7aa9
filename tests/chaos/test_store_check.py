"""The periodic check of the store is what stops an instance deciding once Redis turns unsafe: it must
go on through any answer Redis gives it. A slow script of another client makes Redis answer BUSY to
everything else for a while; afterwards the store is switched to an evicting policy and filled.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.exceptions import ResponseError

from tests.chaos.kit import CHECK_SECONDS, COUNTERS, Ledger, Servers, instance, mint_many, settings
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis


async def test_the_store_check_outlives_a_busy_redis_and_then_finds_eviction(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Redis BUSY for 0.6 s, then switched to allkeys-lru and filled: scans 503, no code accepted twice."""
    redis = servers.start()
    admin = servers.admin(redis)
    one = await instance(aiohttp_client, scene, settings(redis.url))
    codes = mint_many(scene, "51120001", 16)
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], codes)} == {"accepted"}
    await admin.client.config_set("busy-reply-threshold", 50)
    busy = servers.admin(redis)
    script = asyncio.ensure_future(busy.client.eval("while true do end", 0))
    await asyncio.sleep(3 * CHECK_SECONDS)  # a few periodic checks meet BUSY
    await admin.client.script_kill()
    with pytest.raises(ResponseError, match="killed"):
        await script
    used = int((await admin.info("memory"))["used_memory"])
    await admin.client.config_set("maxmemory", used + 2 * 1024 * 1024)
    await admin.client.config_set("maxmemory-policy", "allkeys-lru")
    await asyncio.sleep(5 * CHECK_SECONDS)  # five checks' time to find it (no /readyz: it would check)
    await admin.fill(8 * 1024 * 1024)
    left = await admin.claims()
    try:
        shown = await ledger.scans(one, scene, COUNTERS[1], codes)
        again = sum(a.decision == "accepted" for a in shown)
        ledger.note = f"claims left {left} of {len(codes)}; {again} accepted again"
        ledger.assert_safe()
        assert all(a.refused for a in shown)
    finally:
        # The dead check's error is raised again when the app shuts down; the case is about what came before.
        with contextlib.suppress(ResponseError):
            await one.close()
