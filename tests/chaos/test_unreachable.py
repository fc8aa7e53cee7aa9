"""An instance that starts while its Redis is down has checked nothing: it decides no scan (unchecked)
and is not ready (reachable) until the store answers, and then decides on its own within a second."""

from __future__ import annotations

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, checks, instance, mint_many, settings, until_ready
from tests.helpers import ClientFactory
from tests.scenes import Scene

pytestmark = pytest.mark.redis


async def test_an_instance_started_before_its_redis_decides_nothing_until_it_has_checked_it(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Redis down at start: scans 503 (unchecked or unreachable), /readyz 503 (reachable); once it is up, each
    code accepted once."""
    redis = servers.make()
    one = await instance(aiohttp_client, scene, settings(redis.url))
    codes = mint_many(scene, "51070001", 8)
    refused = await ledger.scans(one, scene, COUNTERS[0], codes)
    details = [a.body["detail"] for a in refused]
    assert all(a.refused for a in refused)
    assert all(
        "cannot guarantee one-time use" in d and ("not been checked" in d or "unreachable" in d) for d in details
    )
    ledger.keep("scan unchecked", refused[0].body)
    status, body = await ledger.readyz(one)
    assert (status, checks(body)) == (503, {"reachable"}), body
    redis.start()
    assert await until_ready(ledger, one, limit=3) < 2
    two = await instance(aiohttp_client, scene, settings(redis.url))
    assert {a.decision for a in await ledger.scans(one, scene, COUNTERS[0], codes)} == {"accepted"}
    assert [a.reasons for a in await ledger.scans(two, scene, COUNTERS[1], codes)] == [["REPLAYED"]] * len(codes)
    ledger.note = "503 until the first check; then each code accepted once"
    ledger.assert_safe()
