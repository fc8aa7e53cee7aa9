"""A code whose iat is in the future by the whole leeway and whose life is the whole lifetime cap: the
service accepts it until its exp + leeway, which is later than "the cap plus the leeway from the
moment it was first accepted". Its claim must last at least as long.

A shortened cap (3 s) and leeway (2 s) make the case run in seconds. The codes are forged with the
issuer's real key (tests/forge.py), since the issuer signs no iat in the future.
"""

from __future__ import annotations

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, at, forge, instance, next_second, settings
from tests.helpers import ClientFactory
from tests.scenes import Scene
from verifier.core.decide import Policy

pytestmark = pytest.mark.redis

LEEWAY = 2
CAP = 3
STEP = 0.25  # seconds between the moments a code is shown again


async def test_a_code_issued_in_the_future_at_the_lifetime_cap_is_replayed_until_it_expires(
    aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Codes with iat = now + leeway, exp = iat + cap, accepted at A are REPLAYED at B every 0.25 s to exp + leeway."""
    redis = servers.start()
    config = settings(redis.url, policy=Policy(leeway=LEEWAY, max_lifetime=CAP))
    one = await instance(aiohttp_client, scene, config)
    two = await instance(aiohttp_client, scene, config)
    # From a whole second: a claim kept "cap + leeway + 1 s from acceptance" would end 1 s before exp + leeway.
    start = await next_second()
    iat = int(start) + LEEWAY
    exp = iat + CAP
    until = exp + LEEWAY  # B takes such a code while its clock is before this
    moments = [start + 0.3 + STEP * k for k in range(int((until - 0.3 - start - 0.3) / STEP) + 1)]
    codes = [forge(scene, f"51040001{k:04d}", iat=iat, exp=exp) for k in range(len(moments) + 1)]
    controls = [forge(scene, f"51040002{k:04d}", iat=iat, exp=exp) for k in range(len(moments) + 1)]
    ledger.note = f"{len(moments)} moments from acceptance to exp + leeway, {until - start:.1f} s"
    accepted = await ledger.scans(one, scene, COUNTERS[0], codes)
    assert [a.decision for a in accepted] == ["accepted"] * len(codes), [a.body for a in accepted][:2]
    for k, moment in enumerate(moments):
        await at(moment)
        shown = await ledger.scan(two, scene, COUNTERS[1 + k % 5], codes[k])
        control = await ledger.scan(two, scene, COUNTERS[1 + (k + 1) % 5], controls[k])
        assert control.decision == "accepted", (moment - start, control.body)  # B still takes a code never shown
        assert shown.reasons == ["REPLAYED"], (moment - start, shown.body)
    await at(until + 0.1)
    last = await ledger.scan(two, scene, COUNTERS[1], codes[-1])
    control = await ledger.scan(two, scene, COUNTERS[2], controls[-1])
    assert "TOKEN_EXPIRED" in last.reasons
    assert control.reasons == ["TOKEN_EXPIRED"]
    ledger.assert_safe()
