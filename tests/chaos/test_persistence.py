"""A Redis that keeps nothing on disk (--appendonly no) forgets every claim and revocation when it
restarts. The service refuses such a store (persistence) unless allow_volatile_store is set; with the
flag it decides, and a restart's loss is the flag's documented risk, counted here rather than denied.
"""

from __future__ import annotations

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, checks, instance, mint, mint_many, settings, until_ready
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis

NO_AOF = ("--appendonly", "no")


async def test_a_redis_without_persistence_is_not_ready_and_accepts_nothing_before_or_after_a_restart(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Redis with --appendonly no: /readyz 503 naming persistence, every scan 503, before and after a restart."""
    redis = servers.start(*NO_AOF)
    one = await instance(aiohttp_client, scene, settings(redis.url))
    two = await instance(aiohttp_client, scene, settings(redis.url))
    codes = mint_many(scene, "51060001", 8)
    status, body = await ledger.readyz(one)
    assert (status, checks(body)) == (503, {"persistence"}), body
    before = await ledger.scans(one, scene, COUNTERS[0], codes)
    redis.stop()
    redis.start()
    after = [*await ledger.scans(two, scene, COUNTERS[1], codes), *await ledger.scans(one, scene, COUNTERS[0], codes)]
    status, body = await ledger.readyz(two)
    assert (status, checks(body)) == (503, {"persistence"}), body
    assert all(a.status == 503 for a in before + after)
    assert all(a.refused and "appendonly no" in a.body["detail"] for a in before + after[-8:])
    assert ledger.acceptances == 0
    ledger.note = "not ready (persistence): nothing accepted at all"
    ledger.assert_safe()


async def test_allow_volatile_store_decides_and_a_restart_forgets_every_claim_and_revocation(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """allow_volatile_store: codes accepted and a licence revoked before a restart are accepted after it (counted)."""
    redis = servers.start(*NO_AOF)
    config = settings(redis.url, allow_volatile_store=True)
    one = await instance(aiohttp_client, scene, config)
    two = await instance(aiohttp_client, scene, config)
    assert (await ledger.readyz(one))[0] == 200
    codes = mint_many(scene, "51060002", 8)
    revoked = mint(scene, "510600030001")
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], [*codes, revoked])} == {"accepted"}
    assert await ledger.revoke(one, scene, revoked) == 200
    assert [a.reasons for a in await ledger.scans(two, scene, COUNTERS[1], codes)] == [["REPLAYED"]] * len(codes)
    redis.stop()
    redis.start()
    await until_ready(ledger, two)
    again = await ledger.scans(two, scene, COUNTERS[2], [*codes, revoked])
    assert {a.decision for a in again} == {"accepted"}
    ledger.expected_loss = True
    ledger.note = "documented risk of allow_volatile_store: the restart forgot every claim and the revocation"
    assert (ledger.accepted_twice, ledger.revoked_accepted) == (len(codes) + 1, 1)
