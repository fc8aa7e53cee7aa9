"""What the audit tests read of Redis's audit streams — backlog and pending events — and their waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from verifier.adapters.redis_audit import GROUP
from verifier.core.identity import SHARD_TAGS

STREAMS = [f"cy:{{{tag}}}:audit" for tag in SHARD_TAGS]


async def pending(redis: Redis, consumer: str | None = None) -> int:
    """Events taken and not acknowledged (by ``consumer``, or by anyone), over every stream (XPENDING)."""
    total = 0
    for stream in STREAMS:
        try:
            summary = await redis.xpending(stream, GROUP)
        except ResponseError:  # no group on that stream yet
            continue
        total += sum(int(c["pending"]) for c in summary["consumers"] if consumer in (None, c["name"]))
    return total


async def backlog(redis: Redis) -> int:
    """Events in the streams: appended and not yet acknowledged."""
    return sum([int(await redis.xlen(stream)) for stream in STREAMS])


async def until(done: Callable[[], Awaitable[bool]], what: str, limit: float = 20) -> None:
    """Wait until ``done()`` says so (asked every 0.1 s), failing after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not await done():
        assert time.monotonic() < deadline, f"waited {limit} s for {what}"
        await asyncio.sleep(0.1)
