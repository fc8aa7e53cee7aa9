"""Clock skew between two instances on one Redis (max_clock_skew 60).

A code is accepted by the instance whose clock is ahead, then shown at the other (another counter)
just after its exp + leeway by the first instance's clock, while the second, behind, still accepts
the code: that is when a claim kept for "the token's remaining life by the accepting instance's
clock" had expired. It must be REPLAYED. A control code that was never shown, presented at the same
moments, shows that the first instance rejects it as expired and the second accepts it: the moments
are inside the window.

Skews of 3 s and of 29.75 s each way: 29.75 rather than 30 because 30 s is exactly half the allowed
skew, and the instance's check measures the offset to Redis's TIME across a round trip, so an
instance at 30.000 s is found off (by a few microseconds) as often as not. Past half (31 s) an
instance is not ready and decides nothing.
"""

from __future__ import annotations

import math
import time

import pytest

from tests.chaos.kit import COUNTERS, Ledger, Servers, at, checks, instance, mint_many, settings
from tests.helpers import ClientFactory
from tests.scenes import Scene
from verifier.core.decide import Policy

pytestmark = pytest.mark.redis

LEEWAY = 1
SKEW = 60
POLICY = Policy(leeway=LEEWAY, max_lifetime=60)
PER_MOMENT = 3  # codes shown at each moment
# Seconds after the accepting instance's clock passed exp + leeway. A claim kept for the token's remaining
# life by that clock (plus leeway + 1 s) was gone 1 to 2 s after it: by the last of these, often by the second.
MOMENTS = (0.2, 1.2, 2.2)


async def show_after_exp_at_the_skewed_instance(
    offset: float,
    moments: tuple[float, ...],
    *,
    aiohttp_client: ClientFactory,
    scene: Scene,
    servers: Servers,
    ledger: Ledger,
) -> None:
    """Accept codes at the instance ahead, show them at the one behind at each of ``moments``: all REPLAYED."""
    redis = servers.start()
    config = settings(redis.url, max_clock_skew=SKEW, policy=POLICY)
    skewed = await instance(aiohttp_client, scene, config, clock=lambda: time.time() + offset)
    exact = await instance(aiohttp_client, scene, config)
    first, second = (skewed, exact) if offset > 0 else (exact, skewed)
    ahead, behind = max(offset, 0.0), min(offset, 0.0)
    assert (await ledger.readyz(skewed))[0] == 200
    start = time.time()
    iat = math.floor(start + behind)  # the clock behind says it is now: both instances take the code
    ttl = math.ceil(start + ahead - LEEWAY + 0.5 - iat)  # the instance ahead takes it for half a second more
    codes = mint_many(scene, "51030001", PER_MOMENT * len(moments), now=iat, ttl=ttl)
    controls = mint_many(scene, "51030002", len(moments), now=iat, ttl=ttl)
    exp = iat + ttl
    ledger.note = f"{len(codes)} codes shown at {len(moments)} moments after exp+leeway by the clock ahead"
    accepted = await ledger.scans(first, scene, COUNTERS[0], codes)
    assert [a.decision for a in accepted] == ["accepted"] * len(codes), [a.body for a in accepted]
    for k, moment in enumerate(moments):
        await at(exp + LEEWAY - ahead + moment)
        control = controls[k]
        late = await ledger.scan(first, scene, COUNTERS[4], control)
        assert late.reasons == ["TOKEN_EXPIRED"], (moment, late.body)  # past exp + leeway by the first clock
        shown = await ledger.scans(second, scene, COUNTERS[1 + k % 3], codes[k * PER_MOMENT : (k + 1) * PER_MOMENT])
        fresh = await ledger.scan(second, scene, COUNTERS[5], control)
        assert fresh.decision == "accepted", (moment, fresh.body)  # the second instance still takes the code
        assert [a.reasons for a in shown] == [["REPLAYED"]] * PER_MOMENT, (moment, [a.body for a in shown])
    ledger.assert_safe()


@pytest.mark.parametrize("offset", [3.0, -3.0, 29.75, -29.75], ids=["+3s", "-3s", "+29.75s", "-29.75s"])
async def test_a_code_accepted_by_the_clock_ahead_is_replayed_where_the_clock_is_behind(
    offset: float, aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Codes accepted by the instance ahead are REPLAYED at the one behind in the first 2.2 s after exp + leeway."""
    await show_after_exp_at_the_skewed_instance(
        offset, MOMENTS, aiohttp_client=aiohttp_client, scene=scene, servers=servers, ledger=ledger
    )


@pytest.mark.chaos
@pytest.mark.parametrize("offset", [29.75, -29.75], ids=["+29.75s", "-29.75s"])
async def test_a_code_is_replayed_for_the_whole_window_the_clock_behind_would_take_it(
    offset: float, aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """Codes accepted by the instance ahead are REPLAYED at the one behind every 2 s of its 29.75 s window."""
    moments = tuple(0.2 + 2.0 * k for k in range(15))  # up to 28.2 s, inside the 29.75 s the skew opens
    await show_after_exp_at_the_skewed_instance(
        offset, moments, aiohttp_client=aiohttp_client, scene=scene, servers=servers, ledger=ledger
    )


@pytest.mark.parametrize("offset", [31.0, -31.0], ids=["+31s", "-31s"])
async def test_an_instance_off_by_more_than_half_the_allowed_skew_decides_nothing(
    offset: float, aiohttp_client: ClientFactory, scene: Scene, servers: Servers, ledger: Ledger
) -> None:
    """An instance 31 s off its Redis (max skew 60) answers /readyz 503 naming clock and every scan 503."""
    redis = servers.start()
    config = settings(redis.url, max_clock_skew=SKEW)
    exact = await instance(aiohttp_client, scene, config)
    skewed = await instance(aiohttp_client, scene, config, clock=lambda: time.time() + offset)
    codes = mint_many(scene, "51030003", 4)
    assert [a.decision for a in await ledger.scans(exact, scene, COUNTERS[0], codes)] == ["accepted"] * 4
    status, body = await ledger.readyz(skewed)
    assert status == 503
    assert checks(body) == {"clock"}, body
    assert (await ledger.readyz(exact))[0] == 200
    shown = await ledger.scans(skewed, scene, COUNTERS[1], codes)
    fresh = await ledger.scans(skewed, scene, COUNTERS[0], mint_many(scene, "51030004", 4))
    assert all(a.refused and "clock" in a.body["detail"] for a in shown + fresh), [a.body for a in shown + fresh]
    ledger.note = "31 s off: not ready (clock), no scan decided"
    ledger.assert_safe()
