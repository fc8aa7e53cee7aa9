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
from verifier.errors import StoreUnavailableError
from verifier.service.ports import Commit, ScanRecord, ScanStore, licence_tag

RK = "driving-licence|SC|510100123456"
TAG = licence_tag(RK)


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
    )


def commit(rec: ScanRecord, digest: str = "d1", jti: str | None = "j1", *, expires_at: int | None = None) -> Commit:
    """A commit whose claim and cache entry expire 300 s from now (or at ``expires_at``), its record in an hour."""
    return Commit(
        rec,
        TAG,
        digest,
        jti if rec.decision == "accepted" else None,
        RK,
        "driving-licence|SC|CQ|notary-driving-licence",
        int(time.time()) + 300 if expires_at is None else expires_at,
        3600,
    )


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
    yield adapter
    await adapter.close()


async def test_first_commit_is_fresh_and_second_is_cached(store: ScanStore) -> None:
    """A counter's second commit of the same token returns its first scan, marked cached."""
    first, cached, revoked = await store.commit(commit(record("a", "c1")))
    assert (first.decision, cached, revoked) == ("accepted", False, False)
    again, cached, _ = await store.commit(commit(record("b", "c1")))
    assert cached is True
    assert again.scan_id == first.scan_id
    found = await store.lookup(TAG, "c1", "d1", RK)
    assert found is not None
    assert found[0].scan_id == first.scan_id


async def test_lookup_misses_for_another_counter(store: ScanStore) -> None:
    """The result cache is per counter."""
    await store.commit(commit(record("a", "c1")))
    assert await store.lookup(TAG, "c2", "d1", RK) is None


async def test_accepted_token_at_second_counter_is_replayed(store: ScanStore) -> None:
    """One-time use: the same jti accepted at one counter is REPLAYED at another."""
    await store.commit(commit(record("a", "c1")))
    second, cached, _ = await store.commit(commit(record("b", "c2")))
    assert cached is False
    assert second.decision == "rejected"
    assert second.reasons == (("REPLAYED", ""),)
    fetched = await store.get_scan(second.scan_id)
    assert fetched is not None
    assert fetched.reasons == (("REPLAYED", ""),)


async def test_rejection_does_not_use_up_the_token(store: ScanStore) -> None:
    """A token rejected at one counter (say, out of scope) can still be accepted at another."""
    await store.commit(commit(record("a", "c1", "rejected", (("OUT_OF_PILOT_SCOPE", ""),))))
    second, _, _ = await store.commit(commit(record("b", "c2")))
    assert second.decision == "accepted"


async def test_revoked_licence_is_rejected_and_cached_acceptance_reports_revocation(store: ScanStore) -> None:
    """Revocation rejects a fresh scan, and a cached acceptance reports the licence revoked."""
    await store.commit(commit(record("a", "c1")))
    await store.set_revoked(RK, True, "lost")
    found = await store.lookup(TAG, "c1", "d1", RK)
    assert found is not None
    assert found[1] is True
    fresh, _, revoked = await store.commit(commit(record("b", "c2"), digest="d2", jti="j2"))
    assert revoked is True
    assert fresh.reasons == (("REVOKED", ""),)
    await store.set_revoked(RK, False, "")
    restored, _, revoked = await store.commit(commit(record("c", "c3"), digest="d3", jti="j3"))
    assert (restored.decision, revoked) == ("accepted", False)


async def test_stats_count_decisions_reasons_and_rescans(store: ScanStore) -> None:
    """Statistics count each decided scan by its labels, each reason, and re-scans apart."""
    await store.commit(commit(record("a", "c1")))
    await store.commit(commit(record("b", "c1")))  # cached re-scan
    await store.commit(commit(record("c", "c2"), digest="d2"))  # replayed
    stats = await store.stats()
    key = "driving-licence|SC|CQ|notary-driving-licence"
    assert stats[f"scans|{key}|accepted"] == 1
    assert stats[f"scans|{key}|rejected"] == 1
    assert stats[f"reason|{key}|REPLAYED"] == 1
    assert stats["rescans"] == 1
    assert sum(v for k, v in stats.items() if k.startswith("minute|")) == 2


async def test_unknown_scan_id_is_none(store: ScanStore) -> None:
    """A scan id nobody made is not found."""
    assert await store.get_scan(f"{TAG}-nothing") is None


async def test_record_round_trips_operator_and_serial(store: ScanStore) -> None:
    """The stored scan keeps its operator and business serial number."""
    rec, _, _ = await store.commit(commit(record("a", "c1")))
    fetched = await store.get_scan(rec.scan_id)
    assert fetched == rec
    assert (fetched.operator, fetched.serial_no) == ("clerk-7", "SN-1")


async def test_memory_store_forgets_at_the_commits_expiry() -> None:
    """Cached scans and one-time claims are kept until the absolute time the commit names, then forgotten."""
    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.commit(commit(record("a", "c1"), expires_at=1300))
    now[0] = 1299.5
    assert await store.lookup(TAG, "c1", "d1", RK) is not None
    replay, _, _ = await store.commit(commit(record("b", "c2"), digest="d2"))
    assert replay.reasons == (("REPLAYED", ""),)
    now[0] = 1300
    assert await store.lookup(TAG, "c1", "d1", RK) is None


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
            await store.lookup(TAG, "c9", "d9", RK)
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
