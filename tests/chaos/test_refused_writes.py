"""A Redis that answers but refuses writes — out of memory under noeviction, or a read-only replica
named as the store — can keep no claim: the probe write finds it (write), and nothing is decided."""

from __future__ import annotations

import pytest
from redis.exceptions import OutOfMemoryError

from tests.chaos.kit import COUNTERS, Ledger, Servers, checks, instance, mint, mint_many, settings, until_found
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis


async def test_an_out_of_memory_redis_decides_nothing_and_takes_no_revocation(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Redis filled past its maxmemory (noeviction): /readyz 503 naming write, every scan and revocation 503."""
    redis = servers.start()
    admin = servers.admin(redis)
    one = await instance(aiohttp_client, scene, settings(redis.url))
    two = await instance(aiohttp_client, scene, settings(redis.url))
    codes = mint_many(scene, "51090001", 8)
    revoked = mint(scene, "510900020001")
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], [*codes, revoked])} == {"accepted"}
    assert await ledger.revoke(one, scene, revoked) == 200
    await admin.fill(2 * 1024 * 1024)
    used = int((await admin.info("memory"))["used_memory"])
    await admin.client.config_set("maxmemory", used - 1024 * 1024)  # filled past a maxmemory set below it
    with pytest.raises(OutOfMemoryError):
        await admin.client.set("one-more", "x")
    for client in (one, two):
        await until_found(client, limit=2)
        status, body = await ledger.readyz(client)
        assert (status, checks(body)) == (503, {"write"}), body
    answers = [
        *await ledger.scans(two, scene, COUNTERS[1], [*codes, revoked]),
        *await ledger.scans(one, scene, COUNTERS[0], [*codes, revoked]),
        *await ledger.scans(two, scene, COUNTERS[2], mint_many(scene, "51090003", 8)),
    ]
    assert all(a.refused and "refuses writes" in a.body["detail"] for a in answers), [a.body for a in answers][:3]
    assert await ledger.revoke(two, scene, codes[0]) == 503  # not written, so not answered as done
    ledger.note = "out of memory (noeviction): not ready (write), no scan decided"
    ledger.assert_safe()


async def test_a_read_only_replica_named_as_the_store_decides_nothing(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """An instance whose store URL is a replica: /readyz 503 naming write, every scan 503, codes stay claimed."""
    primary = servers.start("--repl-diskless-sync-delay", "0")
    replica = servers.replica_of(primary)
    await servers.admin(primary).wait_replicated()
    one = await instance(aiohttp_client, scene, settings(primary.url))
    codes = mint_many(scene, "51090004", 8)
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], codes)} == {"accepted"}
    two = await instance(aiohttp_client, scene, settings(replica.url))
    status, body = await ledger.readyz(two)
    assert (status, checks(body)) == (503, {"write"}), body
    answers = [
        *await ledger.scans(two, scene, COUNTERS[1], codes),
        *await ledger.scans(two, scene, COUNTERS[0], mint_many(scene, "51090005", 8)),
    ]
    assert all(a.refused and "read only replica" in a.body["detail"] for a in answers), [a.body for a in answers][:3]
    shown = await ledger.scans(one, scene, COUNTERS[1], codes)
    assert [a.reasons for a in shown] == [["REPLAYED"]] * len(codes)
    ledger.note = "read-only replica as the store: not ready (write), no scan decided"
    ledger.assert_safe()
