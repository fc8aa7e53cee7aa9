"""Nothing in Redis names a licence or its holder: after scans, re-scans, a replay, a revocation and a restore,
no key or value — strings, hashes, streams — holds a licence number, a holder's name, a ``sub`` or a token,
and a scan id names nothing that a masked number and a list of candidates could be matched against."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from tests.forge import split
from tests.redis_server import RedisServer
from tests.scenes import Scene
from tests.service.desk import NOTARY_2, Desk
from verifier.adapters.redis_store import RedisStore
from verifier.core.identity import SHARD_TAGS
from verifier.issuer.mint import citizen_id

pytestmark = pytest.mark.redis


async def everything_in(url: str) -> str:
    """Every key of Redis and every value it holds, as one text."""
    client = Redis.from_url(url, decode_responses=True)
    parts: list[str] = []
    try:
        async for key in client.scan_iter(count=1000):
            parts.append(key)
            kind = await client.type(key)
            value: Any
            if kind == "string":
                value = await client.get(key)
            elif kind == "hash":
                value = await client.hgetall(key)
            elif kind == "stream":
                value = await client.xrange(key)
            else:
                value = f"<{kind!r}>"
            parts.append(repr(value))
    finally:
        await client.aclose()
    return "\n".join(parts)


async def test_nothing_in_redis_names_a_licence_or_its_holder(scene: Scene, own_redis: RedisServer) -> None:
    """Known numbers and names go through every kind of answer; none of them, nor the tokens' ``sub``, is
    anywhere in Redis afterwards (the masked view keeps the first three and last two characters only)."""
    store = RedisStore.from_url(own_redis.url)
    desk = Desk(scene, store)
    shown = [(citizen_id(908_001), "欧阳娜娜"), (citizen_id(908_002), "司马相如"), (citizen_id(908_003), "诸葛亮")]
    tokens = [scene.driving_licence("SC", licence_no=number, holder=name) for number, name in shown]
    try:
        for token in tokens:
            await desk.scan(token, serial_no="YW-1")
            await desk.scan(token, serial_no="YW-1")  # a re-scan
            await desk.scan(token, serial_no="YW-2")  # ALREADY_USED_HERE
            await desk.scan(token, counter=NOTARY_2)  # REPLAYED
        await desk.service.revoke("driving-licence", "SC", shown[0][0], reason="挂失")
        await desk.scan(tokens[0], serial_no="YW-1")
        await desk.service.revoke("driving-licence", "SC", shown[0][0], reason="", restore=True)
        await desk.service.revoke("driving-licence", "SC", shown[1][0], reason="吊销")
        await desk.service.stats()
    finally:
        await store.close()
    text = await everything_in(own_redis.url)
    assert "cy:{s" in text  # the store was written to
    for number, name in shown:
        assert number not in text
        assert number[3:-2] not in text  # not even the masked middle
        assert name not in text
    for token in tokens:
        assert split(token)[1]["sub"] not in text
        assert token.split(".")[2] not in text


async def test_a_scan_id_is_a_shard_and_chance(scene: Scene, own_redis: RedisServer) -> None:
    """Scans of one licence get scan ids sharing at most their shard tag (one of sixteen): the rest is random,
    so a scan id shown on the console cannot be matched against candidate licence numbers."""
    store = RedisStore.from_url(own_redis.url)
    desk = Desk(scene, store)
    try:
        ids = [
            (
                await desk.scan(scene.driving_licence("SC", licence_no=citizen_id(908_009)), counter=counter)
            ).record.scan_id
            for counter in ("cq-notary-zhixin-01", "cq-notary-yubei-01")
        ]
    finally:
        await store.close()
    tags = {scan_id.split("-", 1)[0] for scan_id in ids}
    assert len(tags) == 1
    assert tags <= set(SHARD_TAGS)
    assert ids[0].split("-", 1)[1] != ids[1].split("-", 1)[1]
