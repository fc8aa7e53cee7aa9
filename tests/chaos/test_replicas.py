"""A primary and a replica, both with their append-only files, and min_replica_acks=1: a claim or a
revocation counts only once the replica holds it (WAIT in the same round trip). A replica that lags
(SIGSTOP) holds back every acceptance (503); once it catches up, the codes are accepted; and after the
primary is killed and the replica promoted, no code accepted before is accepted again.
"""

from __future__ import annotations

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, checks, instance, mint, mint_many, settings, until_ready
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis

PRIMARY = ("--repl-diskless-sync-delay", "0")  # a replica's first sync starts at once


async def test_a_lagging_replica_holds_back_acceptance_and_a_failover_keeps_every_claim(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """No replica: 503 (replicas); replica frozen: fresh codes 503; resumed: accepted; promoted: none accepted again."""
    primary = servers.start(*PRIMARY)
    config = settings(primary.url, min_replica_acks=1)
    one = await instance(aiohttp_client, scene, config)
    status, body = await ledger.readyz(one)
    assert (status, checks(body)) == (503, {"replicas"}), body
    early = mint_many(scene, "51080001", 4)
    assert all(a.refused for a in await ledger.scans(one, scene, COUNTERS[0], early))
    replica = servers.replica_of(primary)
    await servers.admin(primary).wait_replicated()
    await until_ready(ledger, one)
    codes = mint_many(scene, "51080002", 8)
    revoked = mint(scene, "510800030001")
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], [*early, *codes, revoked])} == {"accepted"}
    assert await ledger.revoke(one, scene, revoked) == 200
    replica.pause()
    try:
        fresh = mint_many(scene, "51080004", 6)
        # One scan alone, then the rest at once: the WAITs queue behind each other on the one connection.
        held = [await ledger.scan(one, scene, COUNTERS[0], fresh[0])]
        held += await ledger.scans(one, scene, COUNTERS[0], fresh[1:])
        unconfirmed = mint(scene, "510800050001")
        revoking = await ledger.revoke(one, scene, unconfirmed)
    finally:
        replica.resume()
    assert "0 of 1 replicas acknowledged" in held[0].body["detail"], held[0].body
    assert all(a.status == 503 for a in held), [a.body for a in held]
    assert revoking == 503
    await until_ready(ledger, one)  # the connection the WAITs held was dropped: the store is checked again first
    again = await ledger.scans(one, scene, COUNTERS[0], fresh)
    assert {a.decision for a in again} == {"accepted"}, [a.body for a in again]
    ledger.note = f"{len(fresh)} fresh codes held back by the frozen replica, then accepted; primary killed"
    primary.stop()  # at once: what the replica acknowledged is all the failover may rely on
    await servers.admin(replica).promote()
    two = await instance(aiohttp_client, scene, settings(replica.url))  # its own append-only file: no ack needed
    assert (await ledger.readyz(two))[0] == 200
    shown = await ledger.scans(two, scene, COUNTERS[1], [*early, *codes, *fresh])
    assert [a.reasons for a in shown] == [["REPLAYED"]] * len(shown), [a.body for a in shown]
    assert (await ledger.scan(two, scene, COUNTERS[1], revoked)).reasons == ["REVOKED"]
    assert all(a.status == 503 for a in await ledger.scans(one, scene, COUNTERS[2], codes))  # the old primary is gone
    ledger.note += f"; the promoted replica kept all {len(shown)} claims"
    ledger.assert_safe()


async def test_the_first_claim_on_a_primary_without_the_script_waits_for_the_replica(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """The first scan on a primary that lacks the script, replica frozen then lost: 503, never accepted twice."""
    primary = servers.start(*PRIMARY)
    replica = servers.replica_of(primary)
    config = settings(primary.url, min_replica_acks=1, store_check_seconds=60.0)  # no probe write in between
    await servers.admin(primary).wait_replicated()
    one = await instance(aiohttp_client, scene, config)
    await servers.admin(primary).wait_replicated()  # the replica holds the start-up probe: WAIT has no debt
    code = mint(scene, "510800060001")
    replica.pause()
    first = await ledger.scan(one, scene, COUNTERS[0], code)
    # The replica never gets the claim: killed while frozen (what it had not read is lost with it), the
    # primary killed, the replica restarted from its own append-only file and promoted.
    assert replica.process is not None
    replica.process.kill()
    replica.process.wait(timeout=10)
    replica.process = None
    primary.stop()
    replica.start()
    await servers.admin(replica).promote()
    two = await instance(aiohttp_client, scene, settings(replica.url))
    await until_ready(ledger, two)
    after = await ledger.scan(two, scene, COUNTERS[1], code)
    ledger.note = f"first scan, replica frozen: {first.status} {first.decision}; after the failover: {after.decision}"
    ledger.assert_safe()
    assert first.status == 503, first.body
