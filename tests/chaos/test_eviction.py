"""A Redis that evicts keys under memory pressure: a one-time-use claim, a cached acceptance or a
revocation evicted is a code accepted again. The service must stop deciding as soon as its check
finds an evicting maxmemory-policy, and decide nothing while it stays so.

The case switches a running Redis (noeviction, codes accepted, a licence revoked) to the policy with a
small maxmemory, waits until the instances' own periodic check has found it (their metrics, which
check nothing themselves), then fills Redis with other keys until it evicts, and shows everything again.
"""

from __future__ import annotations

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, checks, instance, mint, mint_many, settings, until_found
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis

HEADROOM = 2 * 1024 * 1024  # maxmemory: what Redis holds now plus this


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru"])
async def test_an_evicting_redis_under_memory_pressure_decides_nothing(
    policy: str, aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Redis switched to an evicting policy and filled until it evicts: /readyz 503 (eviction), every scan 503."""
    redis = servers.start()
    admin = servers.admin(redis)
    one = await instance(aiohttp_client, scene, settings(redis.url))
    two = await instance(aiohttp_client, scene, settings(redis.url))
    codes = mint_many(scene, "51050001", 24)
    revoked = mint(scene, "510500020001")
    accepted = await ledger.scans(one, scene, COUNTERS[0], [*codes, revoked])
    assert {a.decision for a in accepted} == {"accepted"}
    assert await ledger.revoke(one, scene, revoked) == 200
    assert (await ledger.scan(two, scene, COUNTERS[0], revoked)).reasons == ["REVOKED"]
    claims = await admin.claims()
    used = int((await admin.info("memory"))["used_memory"])
    await admin.client.config_set("maxmemory", used + HEADROOM)
    await admin.client.config_set("maxmemory-policy", policy)
    for client in (one, two):
        await until_found(client, limit=2)
    await admin.fill(4 * HEADROOM)
    evicted = int((await admin.info("stats"))["evicted_keys"])
    left = await admin.claims()
    ledger.note = f"{evicted} keys evicted; claims held {claims} -> {left}"
    assert evicted > 0
    for client in (one, two):
        status, body = await ledger.readyz(client)
        assert status == 503
        assert checks(body) == {"eviction"}, body
    answers = [
        *await ledger.scans(two, scene, COUNTERS[1], codes),
        *await ledger.scans(one, scene, COUNTERS[2], codes),
        *await ledger.scans(one, scene, COUNTERS[0], codes),  # where they were accepted: the cache may be gone too
        await ledger.scan(two, scene, COUNTERS[0], revoked),
        await ledger.scan(one, scene, COUNTERS[1], revoked),
        *await ledger.scans(one, scene, COUNTERS[3], mint_many(scene, "51050003", 8)),
    ]
    assert all(a.refused and "maxmemory-policy" in a.body["detail"] for a in answers), [a.body for a in answers][:3]
    ledger.assert_safe()
