"""The Redis store's audit events for the trail's writer (:class:`verifier.service.ports.AuditFeed`).

Each shard's stream (``cy:{T}:audit``, written by the scan script) is read through one consumer group,
``trail``: every writer of every instance is a consumer, so each event goes to one writer. An event stays
pending in the group until its writer acknowledges it — then it is deleted from the stream too, so a
stream's length is its backlog. A writer that died leaves its events pending: after ``claim_idle`` seconds
any other writer claims them (``XAUTOCLAIM``). Each command names one stream, so on a cluster it goes to
that shard's slot."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from verifier.adapters.redis_store import RedisStore
from verifier.core.identity import SHARD_TAGS
from verifier.service.ports import AuditEvent, audit_event_from_stream

GROUP = "trail"


class RedisAuditFeed:
    """The audit streams of ``store`` as one feed, read as consumer ``consumer`` (by default host and pid)."""

    def __init__(self, store: RedisStore, *, consumer: str | None = None, claim_idle: float = 30.0) -> None:
        self._store = store
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._streams = [store.key(f"{{{tag}}}:audit") for tag in SHARD_TAGS]
        self._claim_idle_ms = int(claim_idle * 1000)
        self._claimed = float("-inf")  # time.monotonic() of the last look for a dead writer's events
        self._grouped = False

    async def _groups(self) -> None:
        """The consumer group on every stream (made with the stream if need be), once."""
        for stream in self._streams:
            try:
                await self._store.command("XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._grouped = True

    async def take(self, limit: int) -> list[tuple[str, AuditEvent]]:
        """See :meth:`verifier.service.ports.AuditFeed.take`: first what dead writers left (looked for every
        half ``claim_idle``), then new events, stream by stream."""
        if not self._grouped:
            await self._groups()
        taken: list[tuple[str, AuditEvent]] = []
        if time.monotonic() - self._claimed >= self._claim_idle_ms / 2000:
            self._claimed = time.monotonic()
            for stream in self._streams:
                reply = await self._store.command(
                    "XAUTOCLAIM", stream, GROUP, self.consumer, self._claim_idle_ms, "0-0", "COUNT", limit
                )
                await self._forget(stream, reply[2] if len(reply) > 2 else [])  # trimmed away while pending
                taken += _events(stream, reply[1])
        for stream in self._streams:
            if len(taken) >= limit:
                break
            reply = await self._store.command(
                "XREADGROUP", "GROUP", GROUP, self.consumer, "COUNT", limit - len(taken), "STREAMS", stream, ">"
            )
            for _, entries in _streams_of(reply):
                taken += _events(stream, entries)
        return taken

    async def ack(self, refs: Sequence[str]) -> None:
        """See :meth:`verifier.service.ports.AuditFeed.ack`: acknowledged and deleted, stream by stream."""
        by_stream: dict[str, list[str]] = {}
        for ref in refs:
            stream, _, entry = ref.rpartition("/")
            by_stream.setdefault(stream, []).append(entry)
        for stream, entries in by_stream.items():
            await self._forget(stream, entries)

    async def _forget(self, stream: str, entries: Sequence[str]) -> None:
        if entries:
            await self._store.command("XACK", stream, GROUP, *entries)
            await self._store.command("XDEL", stream, *entries)

    async def backlog(self) -> int:
        """See :meth:`verifier.service.ports.AuditFeed.backlog`: the streams' lengths."""
        # Sent together: on one Redis they share the multiplexed connection's one flush, not sixteen round trips.
        return sum(int(n) for n in await asyncio.gather(*(self._store.command("XLEN", s) for s in self._streams)))


def _streams_of(reply: Any) -> list[tuple[str, Any]]:
    """XREADGROUP's reply as (stream, entries): a list of pairs in RESP2, a map in RESP3, None when empty."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(reply.items())
    return [(stream, entries) for stream, entries in reply]


def _events(stream: str, entries: Any) -> list[tuple[str, AuditEvent]]:
    """Stream entries as (reference, event); an entry's fields come as a flat list (RESP2) or a map."""
    events = []
    for entry_id, raw in entries or ():
        if raw is None:  # deleted while pending: nothing to write
            continue
        fields = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
        events.append((f"{stream}/{entry_id}", audit_event_from_stream(stream, entry_id, fields)))
    return events
