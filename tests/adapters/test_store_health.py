"""What the Redis adapter says of a Redis's ability to keep one-time use (RedisStore.health), on real
redis-server processes: the compose file's Redis meets every check, each unsafe configuration is named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.redis_server import RedisServer
from verifier.adapters.redis_store import RedisStore

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]


def _compose_redis_args() -> tuple[str, ...]:
    """The redis-server options the compose file runs Redis with."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    command: list[str] = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    return tuple(command[1:])


async def _checks(redis: RedisServer, **options: int | bool) -> list[str]:
    store = RedisStore.from_url(redis.url, **options)  # type: ignore[arg-type]
    try:
        health = await store.health()
    finally:
        await store.close()
    assert health.clock is not None
    assert abs(health.clock - time.time()) < 5
    assert health.identity
    return [finding.check for finding in health.findings]


async def test_the_compose_files_redis_meets_every_check(tmp_path: Path) -> None:
    """Redis started with exactly the compose file's options has no finding."""
    redis = RedisServer(tmp_path, extra_args=_compose_redis_args())
    redis.start()
    try:
        assert await _checks(redis) == []
    finally:
        redis.stop()


@pytest.mark.parametrize(
    ("options", "allowed", "expected"),
    [
        (("--appendonly", "no"), {}, ["persistence"]),
        (("--appendonly", "no"), {"allow_volatile": True}, []),
        (("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"), {}, ["eviction"]),
        (("--maxmemory", "100mb", "--maxmemory-policy", "volatile-lru"), {}, ["eviction"]),
        (("--maxmemory", "1"), {}, ["write"]),
        ((), {"min_replica_acks": 1}, ["replicas"]),
    ],
    ids=["no-aof", "no-aof-allowed", "allkeys-lru", "volatile-lru", "out-of-memory", "no-replica-to-ack"],
)
async def test_each_unsafe_redis_is_named(
    tmp_path: Path, options: tuple[str, ...], allowed: dict[str, int | bool], expected: list[str]
) -> None:
    """A Redis that cannot keep a claim is reported by the check that fails, and only by it."""
    redis = RedisServer(tmp_path, extra_args=options)
    redis.start()
    try:
        assert await _checks(redis, **allowed) == expected
    finally:
        redis.stop()


async def test_a_read_only_replica_is_refused_as_unwritable(tmp_path: Path) -> None:
    """Pointed at a replica, the probe write is refused (READONLY): the check named is write."""
    primary = RedisServer(tmp_path / "primary")
    (tmp_path / "primary").mkdir()
    primary.start()
    (tmp_path / "replica").mkdir()
    replica = RedisServer(tmp_path / "replica", extra_args=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    try:
        assert await _checks(replica) == ["write"]
    finally:
        replica.stop()
        primary.stop()
