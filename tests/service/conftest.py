"""Fixtures of the service's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.redis_server import RedisServer
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.redis_store import RedisStore
from verifier.service.ports import ScanStore


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ScanStore]:
    """Each adapter in turn; Redis on an emptied database of the session's server (its URL kept on it as
    ``test_url``, for a test to read Redis itself)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    await client.aclose()
    adapter = RedisStore.from_url(redis_server.url, allow_volatile=True)
    adapter.test_url = redis_server.url  # type: ignore[attr-defined]
    yield adapter
    await adapter.close()
