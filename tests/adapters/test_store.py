"""The store port's semantics, the same for the in-process and the Redis adapter."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tests.redis_server import RedisServer
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.redis_store import RedisStore
from verifier.core.identity import Identities, shard_tag
from verifier.errors import RateLimitedError, StoreUnavailableError
from verifier.service.ports import Commit, Rate, ScanRecord, ScanStore

RK = Identities(b"k" * 32).licence("driving-licence", "SC", "510100123456")
TAG = shard_tag(RK)


def record(
    scan: str, counter: str, decision: str = "accepted", reasons: tuple[tuple[str, str], ...] = ()
) -> ScanRecord:
    return ScanRecord(
        f"{TAG}-{scan}",
        counter,
        "notary-driving-licence",
        "2026-06-01T02:00:00.000Z",
        decision,
        reasons,
        {"type": "driving-licence"},
        "clerk-7",
        "SN-1",
        RK,
    )


def commit(
    rec: ScanRecord,
    digest: str = "d1",
    jti: str | None = "j1",
    *,
    expires_at: int | None = None,
    rate: Rate | None = None,
) -> Commit:
    """A commit whose claim and cache entry expire 300 s from now (or at ``expires_at``), its record in an hour."""
    return Commit(
        rec,
        TAG,
        digest,
        jti if rec.decision == "accepted" else None,
        RK,
        int(time.time()) + 300 if expires_at is None else expires_at,
        3600,
        rate,
    )


def store_url(store: RedisStore) -> str:
    """The URL a Redis store was made from (the fixture keeps it on the store)."""
    return str(store.test_url)  # type: ignore[attr-defined]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ScanStore]:
    """Each adapter in turn; the Redis one on a flushed database of the test Redis (started only for it)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    client = Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    await client.aclose()
    adapter = RedisStore.from_url(redis_server.url)
    adapter.test_url = redis_server.url  # type: ignore[attr-defined]
    yield adapter
    await adapter.close()


async def test_first_commit_is_fresh_and_second_is_cached(store: ScanStore) -> None:
    """A counter's second commit of the same token returns its first scan, marked cached."""
    first, cached, revoked = await store.commit(commit(record("a", "c1")))
    assert (first.decision, cached, revoked) == ("accepted", False, False)
    again, cached, _ = await store.commit(commit(record("b", "c1")))
    assert cached is True
    assert again.scan_id == first.scan_id
    found = await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None)
    assert found is not None
    assert found[0].scan_id == first.scan_id


async def test_lookup_misses_for_another_counter(store: ScanStore) -> None:
    """The result cache is per counter."""
    await store.commit(commit(record("a", "c1")))
    assert await store.lookup(TAG, "c2", "d1", RK, rate=None, operator=None) is None


async def test_accepted_token_at_second_counter_is_replayed(store: ScanStore) -> None:
    """One-time use: the same jti accepted at one counter is REPLAYED at another."""
    await store.commit(commit(record("a", "c1")))
    second, cached, _ = await store.commit(commit(record("b", "c2")))
    assert cached is False
    assert second.decision == "rejected"
    assert second.reasons == (("REPLAYED", ""),)
    fetched = await store.get_scan(second.scan_id)
    assert fetched is not None
    assert fetched[0].reasons == (("REPLAYED", ""),)


async def test_accepted_token_at_the_same_counter_for_another_business_is_already_used_here(
    store: ScanStore,
) -> None:
    """One code, one business: the claim this counter holds answers another business (another cache entry)
    ALREADY_USED_HERE, not REPLAYED; that answer is cached under its own entry."""
    await store.commit(commit(record("a", "c1")))
    other, cached, _ = await store.commit(commit(record("b", "c1"), digest="d-other-business"))
    assert (other.decision, other.reasons, cached) == ("rejected", (("ALREADY_USED_HERE", ""),), False)
    again, cached, _ = await store.commit(commit(record("c", "c1"), digest="d-other-business"))
    assert (again.scan_id, again.reasons, cached) == (other.scan_id, (("ALREADY_USED_HERE", ""),), True)


async def test_rejection_does_not_use_up_the_token(store: ScanStore) -> None:
    """A token rejected at one counter (say, out of scope) can still be accepted at another."""
    await store.commit(commit(record("a", "c1", "rejected", (("OUT_OF_PILOT_SCOPE", ""),))))
    second, _, _ = await store.commit(commit(record("b", "c2")))
    assert second.decision == "accepted"


async def test_revoked_licence_is_rejected_and_cached_acceptance_reports_revocation(store: ScanStore) -> None:
    """Revocation rejects a fresh scan, and a cached acceptance reports the licence revoked."""
    await store.commit(commit(record("a", "c1")))
    await store.set_revoked(RK, True, "lost", None)
    found = await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None)
    assert found is not None
    assert found[1] is True
    fresh, _, revoked = await store.commit(commit(record("b", "c2"), digest="d2", jti="j2"))
    assert revoked is True
    assert fresh.reasons == (("REVOKED", ""),)
    await store.set_revoked(RK, False, "", None)
    restored, _, revoked = await store.commit(commit(record("c", "c3"), digest="d3", jti="j3"))
    assert (restored.decision, revoked) == ("accepted", False)


async def test_restore_clears_a_cached_revoked_answer(store: ScanStore) -> None:
    """A code answered REVOKED is decided anew once the licence is restored: the cached REVOKED answer is no
    answer any more, and the next commit stores (and claims) afresh."""
    await store.set_revoked(RK, True, "lost", None)
    first, _, _ = await store.commit(commit(record("a", "c1")))
    assert first.reasons == (("REVOKED", ""),)
    found = await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None)
    assert found is not None
    assert found[0].reasons == (("REVOKED", ""),)
    await store.set_revoked(RK, False, "", None)
    assert await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None) is None
    anew, cached, _ = await store.commit(commit(record("b", "c1")))
    assert (anew.scan_id, anew.decision, cached) == (record("b", "c1").scan_id, "accepted", False)


async def test_a_revocation_lasts_its_ttl(store: ScanStore) -> None:
    """A revocation given a TTL is kept that long (Redis: the key's TTL), not for good."""
    await store.set_revoked(RK, True, "lost", 3600)
    _, _, revoked = await store.commit(commit(record("a", "c1")))
    assert revoked is True
    if isinstance(store, RedisStore):
        client = Redis.from_url(store_url(store), decode_responses=True)
        ttl = await client.ttl(f"cy:{{{TAG}}}:v:{RK}")
        await client.aclose()
        assert 3500 < ttl <= 3600


async def test_memory_store_forgets_a_revocation_after_its_ttl() -> None:
    """The in-process store drops a revocation at its TTL, on its clock."""
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.set_revoked(RK, True, "lost", 60)
    now[0] = 1059
    assert (await store.commit(commit(record("a", "c1"), expires_at=2000)))[2] is True
    now[0] = 1060
    assert (await store.commit(commit(record("b", "c2"), digest="d2", jti="j2", expires_at=2000)))[2] is False


async def test_rate_admits_the_burst_then_refuses_with_the_wait(store: ScanStore) -> None:
    """A counter may post its burst at once; the next is refused with the time to wait (about one interval),
    and a refused commit stores nothing; another counter has its own budget."""
    rate = Rate("c1", per_second=2, burst=3)
    for n in range(3):
        await store.note(TAG, record(f"n{n}", "c1", "rejected"), rate)
    with pytest.raises(RateLimitedError) as over:
        await store.commit(commit(record("a", "c1"), rate=rate))
    assert 0.2 < over.value.retry_after <= 0.5
    assert await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None) is None
    with pytest.raises(RateLimitedError):
        await store.lookup(TAG, "c1", "d1", RK, rate=rate, operator=None)
    await store.note(TAG, record("n9", "c2", "rejected"), Rate("c2", per_second=2, burst=3))


async def test_counts_add_up_and_minutes_are_kept_apart(store: ScanStore) -> None:
    """Each counted field adds one; this minute's fields are read back with the rest."""
    minute = time.strftime("%Y%m%d%H%M", time.gmtime())
    store.count(["scans|x|accepted|first", f"minute|{minute}|accepted"])
    store.count(["scans|x|accepted|first"])
    stats = await store.stats()
    assert stats["scans|x|accepted|first"] == 2
    assert stats[f"minute|{minute}|accepted"] == 1


async def test_unknown_scan_id_is_none(store: ScanStore) -> None:
    """A scan id nobody made is not found."""
    assert await store.get_scan(f"{TAG}-nothing") is None


async def test_record_round_trips_operator_and_serial(store: ScanStore) -> None:
    """The stored scan keeps its operator and business serial number."""
    rec, _, _ = await store.commit(commit(record("a", "c1")))
    fetched = await store.get_scan(rec.scan_id)
    assert fetched == (rec, False)
    assert (fetched[0].operator, fetched[0].serial_no, fetched[0].licence_id) == ("clerk-7", "SN-1", RK)


async def test_memory_store_forgets_at_the_commits_expiry() -> None:
    """Cached scans and one-time claims are kept until the absolute time the commit names, then forgotten."""
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.commit(commit(record("a", "c1"), expires_at=1300))
    now[0] = 1299.5
    assert await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None) is not None
    replay, _, _ = await store.commit(commit(record("b", "c2"), digest="d2"))
    assert replay.reasons == (("REPLAYED", ""),)
    now[0] = 1300
    assert await store.lookup(TAG, "c1", "d1", RK, rate=None, operator=None) is None


@pytest.mark.redis
async def test_redis_claim_and_cache_expire_at_the_commits_absolute_time(redis_server: RedisServer) -> None:
    """In Redis the cache entry and the one-time claim expire at the absolute time the commit names (derived
    from the token, not from anyone's clock); the record is kept for its own retention."""
    client = Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushdb()
    store = RedisStore.from_url(redis_server.url)
    expires_at = int(time.time()) + 1234
    await store.commit(commit(record("a", "c1"), expires_at=expires_at))
    cache_at = await client.expiretime(f"cy:{{{TAG}}}:c:c1:d1")
    claim_at = await client.expiretime(f"cy:{{{TAG}}}:j:j1")
    record_ttl = await client.ttl(f"cy:{{{TAG}}}:s:{TAG}-a")
    await store.close()
    await client.aclose()
    assert cache_at == claim_at == expires_at
    assert 3000 < record_ttl <= 3600


async def test_memory_store_sweeps_now_and_then_not_at_every_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past 10,000 live entries a commit does not pass over all of them each time (a scan would cost more
    with every entry); expired entries are still dropped, so memory follows the live tokens."""
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    sweeps = 0
    sweep = store._sweep

    def counted() -> None:
        nonlocal sweeps
        sweeps += 1
        sweep()

    monkeypatch.setattr(store, "_sweep", counted)
    for i in range(12_000):  # two entries a commit, all alive
        await store.commit(commit(record(f"s{i}", "c1"), f"d{i}", None, expires_at=1300))
    assert 1 <= sweeps <= 2, sweeps
    now[0] += 10_000  # every entry has expired
    for i in range(30_000):
        await store.commit(commit(record(f"late{i}", "c1"), f"late{i}", None, expires_at=11_300))
    assert len(store._values) == 2 * 30_000  # the 24,000 expired entries are gone, the live ones kept
    assert sweeps <= 6, sweeps


@pytest.mark.redis
async def test_redis_unable_to_write_is_unavailable_and_a_wrong_key_type_is_a_fault(own_redis: RedisServer) -> None:
    """Out of memory (or a read-only replica) is an outage, answered 503: StoreUnavailableError. A key of the
    wrong type is not an outage but a fault of the data or of this service: it is raised as it is (500)."""
    store = RedisStore.from_url(own_redis.url)
    client = Redis.from_url(own_redis.url, decode_responses=True)
    try:
        await client.hset(f"cy:{{{TAG}}}:c:c9:d9", "not", "a string")  # where the cache expects a scan id
        with pytest.raises(ResponseError) as fault:
            await store.lookup(TAG, "c9", "d9", RK, rate=None, operator=None)
        assert not isinstance(fault.value, StoreUnavailableError)
        assert "WRONGTYPE" in str(fault.value)
        await client.config_set("maxmemory", 1)  # noeviction: every write is refused
        with pytest.raises(StoreUnavailableError, match="maxmemory"):
            await store.commit(commit(record("oom", "c1")))
        await client.config_set("maxmemory", 0)
        assert (await store.commit(commit(record("oom", "c1"))))[0].decision == "accepted"
    finally:
        await client.aclose()
        await store.close()
