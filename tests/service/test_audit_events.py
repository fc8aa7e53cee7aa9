"""Every answer a counter gets leaves its audit event in the same store step — first scans, re-scans, answers
given but not stored — with the business and the clerk of that answer, and a keyed holder pseudonym: never the
licence number, the name or the ``sub``."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from tests.forge import split
from tests.scenes import Scene
from tests.service.desk import NOTARY_2, Desk
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.redis_store import RedisStore
from verifier.core.identity import SHARD_TAGS
from verifier.issuer.mint import citizen_id
from verifier.service.ports import AuditEvent, ScanStore, audit_event_from_stream


async def events_of(store: ScanStore) -> list[AuditEvent]:
    """The events the store holds for the trail, oldest first."""
    if isinstance(store, MemoryStore):
        return list(store.audit_events)
    assert isinstance(store, RedisStore)
    client = Redis.from_url(store.test_url, decode_responses=True)  # type: ignore[attr-defined]
    try:
        found: list[tuple[str, AuditEvent]] = []
        for tag in SHARD_TAGS:
            stream = f"cy:{{{tag}}}:audit"
            entries: list[tuple[str, dict[str, str]]] = await client.xrange(stream)  # type: ignore[assignment]
            found += [(entry_id, audit_event_from_stream(stream, entry_id, fields)) for entry_id, fields in entries]
    finally:
        await client.aclose()
    return [event for _, event in sorted(found, key=lambda pair: tuple(map(int, pair[0].split("-"))))]


async def test_every_answer_has_its_event(scene: Scene, store: ScanStore) -> None:
    """Six answers, six events, each as the counter got it (Redis keeps them in sixteen streams, so their order
    across streams is only to the millisecond): the acceptance, a re-scan by another
    clerk (cached), another serial number (ALREADY_USED_HERE), another counter (REPLAYED), junk (not stored),
    and the cached acceptance once the licence is revoked (REVOKED)."""
    desk = Desk(scene, store)
    number = citizen_id(907_777)
    token = scene.driving_licence("SC", licence_no=number, holder="欧阳娜娜")
    answers = [
        await desk.scan(token, operator="clerk-1", serial_no="YW-1", item=None),
        await desk.scan(token, operator="clerk-2", serial_no="YW-1"),
        await desk.scan(token, operator="clerk-1", serial_no="YW-2"),
        await desk.scan(token, counter=NOTARY_2, operator="clerk-9", serial_no="YW-1"),
        await desk.scan("junk", operator="clerk-1"),
    ]
    await desk.service.revoke("driving-licence", "SC", number, reason="lost")
    answers.append(await desk.scan(token, operator="clerk-3", serial_no="YW-1"))
    events = await events_of(store)
    seen = [(e.scan_id, e.counter, e.operator, e.serial_no, e.decision, e.reasons, e.cached) for e in events]
    given = [
        (
            a.record.scan_id,
            a.record.counter,
            operator,
            a.record.serial_no,
            a.record.decision,
            tuple(code for code, _ in a.record.reasons),
            a.cached,
        )
        for a, operator in zip(answers, ["clerk-1", "clerk-2", "clerk-1", "clerk-9", "clerk-1", "clerk-3"], strict=True)
    ]
    assert sorted(map(repr, seen)) == sorted(map(repr, given))
    expected = [(), (), ("ALREADY_USED_HERE",), ("REPLAYED",), ("TOKEN_MALFORMED",), ("REVOKED",)]
    assert sorted(e.reasons for e in events) == sorted(expected)
    assert len({e.answer_id for e in events}) == 6
    holder = desk.service.identities.holder(split(token)[1]["sub"])
    assert sorted(str(e.holder) for e in events) == sorted([holder] * 5 + ["None"])
    assert {(e.type, e.issuing_province, e.unit, e.channel) for e in events if e.holder} == {
        ("driving-licence", "SC", "sc-police", "jiaoguan-12123")
    }
    text = "".join(e.to_json() for e in events)
    for secret in (number, "欧阳娜娜", split(token)[1]["sub"], token):
        assert secret not in text


async def test_the_item_of_the_business_is_in_its_event(scene: Scene, store: ScanStore) -> None:
    """The 川渝通办 item a scan names is kept with its answer (and with a re-scan of it)."""
    desk = Desk(scene, store)
    token = scene.driving_licence("SC")
    await desk.scan(token, item="ITEM-1")
    await desk.scan(token, item="ITEM-1")
    events: list[Any] = await events_of(store)
    assert [(e.item, e.cached) for e in events] == [("ITEM-1", False), ("ITEM-1", True)]
