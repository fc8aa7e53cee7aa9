"""The Redis adapter of :class:`verifier.service.ports.ScanStore`, shared by every service instance.

A scan costs one round trip: one server-side script checks the counter's rate, looks up the counter's
cached answer, checks revocation, claims one-time use and stores the answer — atomically, so two counters
racing with one token on two instances get exactly one acceptance. It touches one licence's keys only
(and, on one Redis, the counter's rate key).

Keys (``T`` is the licence's shard tag, so a scan's keys share one Redis Cluster slot; ``<licence>`` and
``<digest>`` are keyed identities, verifier.core.identity: no licence number or token in clear)::

    cy:{T}:c:<counter>:<digest>   -> scan id          (expires at the token's exp + leeway + max clock skew)
    cy:{T}:s:<scan id>            -> status + record  (TTL: record retention)
    cy:{T}:j:<jti>                -> counter          (one-time use claim, expires as the cache entry)
    cy:{T}:v:<licence>            -> reason           (revocation; TTL --revocation-days)
    cy:r:{<counter>}              -> µs               (the counter's rate: when its budget is next full)
    cy:{T}:audit                  -> stream           (every answer's audit event; at most about AUDIT_BOUND entries)
    cy:stats, cy:stats:d:<day>    -> counters         (statistics, added once a second: verifier.adapters.redis_stats)

The store keeps a claim only if Redis can: :meth:`RedisStore.health` reads ``INFO`` (which managed
Redis allows, unlike ``CONFIG GET``) for the memory policy and persistence, writes a short-lived probe
key, and reads ``TIME``. With ``min_replica_acks`` above 0, a claim or a revocation counts only once
that many replicas hold it (``WAIT`` sent in the same round trip as the script).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from redis import exceptions as redis_errors
from redis.exceptions import NoScriptError

from verifier.adapters.redis_cluster import CLUSTER_SCHEMES, ClusterCalls, cluster_from_url
from verifier.adapters.redis_pipe import RedisPipe
from verifier.adapters.redis_stats import StatsBuffer
from verifier.core.identity import SHARD_TAGS, shard_tag
from verifier.errors import Finding, RateLimitedError, StoreUnavailableError
from verifier.service.ports import AS_DECIDED, Commit, Rate, ScanRecord, StoreHealth, scan_tag

# Entries each shard's audit stream keeps at most (about: MAXLEN ~), so a trail writer that is down cannot
# fill Redis: sixteen shards × 20,000 entries of about 600 bytes, some 200 MB, hours of a busy province.
AUDIT_BOUND = 20_000
# The scan script. ARGV: 1 mode 'note'|'lookup'|'commit' (or 'rate'), 2 the counter's rate as "<µs per scan>
# <burst in µs>" ('' for no rate check), 3 '1' to touch a cached answer, 4 record key prefix, 5 this answer's
# operator ('' for none), 6 the record (for a note: the answer, not stored), then for a commit: 7 counter,
# 8 claim and cache expiry (Unix s), 9 record TTL, 10 decision, 11 scan id, 12 '1' to claim the jti.
# KEYS: 1 the shard's audit stream, 2 cache (c), 3 revocation (v), 4 one-time claim (j), 5 record (s) — one
# shard's, so one Cluster slot — and, last, with a rate, the counter's rate key (one Redis or Sentinel only:
# a cluster checks the rate in a 'rate' call of its own, the key being in another slot). A note sends the
# stream only.
# The rate is a generic cell rate algorithm on Redis's clock, so every instance counts against one budget;
# over it, nothing else is done and the answer is {-1, µs to wait}. Every answer given appends its audit event
# to the stream in the same step (verifier.service.ports.audit_event_from_stream reads it back), the stream
# trimmed to about AUDIT_BOUND entries.
# Touch (with --min-replica-acks): a cached answer is rewritten unchanged, so the WAIT behind it covers it
# and, the replication stream being ordered, the claim written before it by whichever instance. A claim held
# by this counter already settles as 'H' (ALREADY_USED_HERE), by another as 'P' (REPLAYED). The statistics
# are not here: each instance counts its answers and adds them to Redis once a second (StatsBuffer).
_SCAN_SCRIPT = """
if ARGV[2] ~= '' then
  local interval, burst = string.match(ARGV[2], '(%d+) (%d+)')
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local key = KEYS[#KEYS]
  local after = math.max(tonumber(redis.call('GET', key) or '0'), now) + tonumber(interval)
  if after - now > tonumber(burst) then return {-1, after - now - tonumber(burst)} end
  redis.call('SET', key, string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1)
end
local function audit(rec, cached, revoked)
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', 'AUDIT_BOUND', '*', 'r', rec, 'k', cached, 'v', revoked, 'o', ARGV[5])
end
if ARGV[1] == 'rate' then return {0} end
if ARGV[1] == 'note' then
  audit(ARGV[6], '0', '0')
  return {0}
end
local sid = redis.call('GET', KEYS[2])
if sid then
  local rec = redis.call('GET', ARGV[4] .. sid)
  if rec then
    local revoked = redis.call('EXISTS', KEYS[3])
    if string.sub(rec, 1, 1) ~= 'V' or revoked == 1 then
      if ARGV[3] == '1' then redis.call('SET', KEYS[2], sid, 'KEEPTTL') end
      audit(rec, '1', tostring(revoked))
      return {1, rec, revoked}
    end
  end
end
if ARGV[1] == 'lookup' then return {0} end
local revoked = redis.call('EXISTS', KEYS[3])
local status = 'A'
if ARGV[10] == 'accepted' then
  if revoked == 1 then
    status = 'V'
  elseif ARGV[12] == '1' and not redis.call('SET', KEYS[4], ARGV[7], 'NX', 'EXAT', ARGV[8]) then
    status = redis.call('GET', KEYS[4]) == ARGV[7] and 'H' or 'P'
  end
end
redis.call('SET', KEYS[5], status .. ARGV[6], 'EX', ARGV[9])
redis.call('SET', KEYS[2], ARGV[11], 'EXAT', ARGV[8])
audit(status .. ARGV[6], '0', tostring(revoked))
return {0, status, revoked}
""".replace("AUDIT_BOUND", str(AUDIT_BOUND))
# Redis cannot serve the scan now (503, retry later). Any other error reply (WRONGTYPE, a script error…)
# is a fault of this service or of the data, not of availability: it is raised as it is, and the scan is
# answered 500 "not decided" — fail closed either way, but a bug is not passed off as an outage.
_UNAVAILABLE = (
    redis_errors.ConnectionError,  # BusyLoadingError (Redis loading its data) included
    redis_errors.TimeoutError,
    redis_errors.OutOfMemoryError,
    redis_errors.ReadOnlyError,  # a replica after a failover
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,  # a slot moving in a cluster
    redis_errors.ClusterError,  # a cluster that cannot serve a slot now (CLUSTERDOWN)
    redis_errors.RedisClusterException,  # a slot no node covers, a cluster not reached
    OSError,
)
_SCAN_SHA = hashlib.sha1(_SCAN_SCRIPT.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


class RedisStore:
    """Every command goes through one :class:`verifier.adapters.redis_pipe.RedisPipe` (one Redis, Sentinel),
    which bounds each in time and keeps replies aligned with their calls, or through
    :class:`verifier.adapters.redis_cluster.ClusterCalls` (a cluster)."""

    def __init__(
        self,
        pipe: RedisPipe | ClusterCalls,
        *,
        prefix: str = "cy:",
        min_replica_acks: int = 0,
        replica_ack_timeout: float = 0.5,
        allow_volatile: bool = False,
        stats_interval: float = 1.0,
    ) -> None:
        self._pipe = pipe
        self._prefix = prefix
        self._acks = min_replica_acks
        self._ack_timeout_ms = max(1, int(replica_ack_timeout * 1000))
        self._allow_volatile = allow_volatile
        self._stats = StatsBuffer(self._call, prefix, interval=stats_interval)
        self._cluster = isinstance(pipe, ClusterCalls)
        self._touch = "1" if min_replica_acks else "0"
        self._shards = {tag: _Shard(prefix, tag) for tag in SHARD_TAGS}
        self._rates: dict[Rate, tuple[list[str], str]] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        op_timeout: float = 1.0,
        connect_timeout: float | None = None,
        prefix: str = "cy:",
        min_replica_acks: int = 0,
        allow_volatile: bool = False,
        stats_interval: float = 1.0,
        guarded: bool = False,
    ) -> RedisStore:
        """A store on ``url``: ``redis://``, ``rediss://`` or ``unix://`` as redis-py reads them, or
        ``redis+sentinel://`` (both on one multiplexed connection, verifier.adapters.redis_pipe), or
        ``redis+cluster://`` (redis-py's cluster client, verifier.adapters.redis_cluster); connects at
        the first call. ``connect_timeout`` defaults to half of ``op_timeout``; replicas have half of
        ``op_timeout`` to acknowledge a claim. ``allow_volatile`` accepts a Redis that keeps nothing on disk
        (tests and benchmarks only)."""
        connect_timeout = op_timeout / 2 if connect_timeout is None else connect_timeout
        calls: RedisPipe | ClusterCalls
        if url.startswith(CLUSTER_SCHEMES):
            if min_replica_acks:
                raise ValueError("--min-replica-acks needs one Redis or Sentinel; a cluster's primaries need AOF")
            calls = ClusterCalls(cluster_from_url(url, timeout=op_timeout, connect_timeout=connect_timeout))
        else:
            calls = RedisPipe.from_url(url, timeout=op_timeout, connect_timeout=connect_timeout, guarded=guarded)
        return cls(
            calls,
            prefix=prefix,
            min_replica_acks=min_replica_acks,
            replica_ack_timeout=op_timeout / 2,
            allow_volatile=allow_volatile,
            stats_interval=stats_interval,
        )

    async def _call(self, *args: str | int, checking: bool = False) -> Any:
        """One command; Redis out of reach, too slow or unable to write now is StoreUnavailableError.
        ``checking``: a call of the safety check, which may open a connection (see RedisPipe's guard)."""
        try:
            return await self._pipe.call(*args, checking=checking)
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"Redis unavailable: {exc}") from exc

    async def _script(self, keys: list[str], args: list[str | int]) -> Any:
        """The scan script on its keys' primary, replicated as ``min_replica_acks`` asks (see :meth:`_replicated`)."""
        call = self._call("EVALSHA", _SCAN_SHA, len(keys), *keys, *args)
        try:
            return await (self._replicated(call) if self._acks else call)  # no extra coroutine without acks
        except NoScriptError:  # a restarted or flushed Redis (or a slot's new primary) has not seen it: it did not run
            # EVAL runs it and keeps it; its WAIT goes with it again, the first having answered before any write.
            return await self._replicated(self._call("EVAL", _SCAN_SCRIPT, len(keys), *keys, *args))

    def _rate(self, rate: Rate | None) -> tuple[list[str], str]:
        """The rate key and argument the script takes (none for no rate); made once per counter."""
        if rate is None:
            return [], ""
        made = self._rates.get(rate)
        if made is None:
            interval = max(1, round(1_000_000 / rate.per_second))
            made = self._rates[rate] = ([f"{self._prefix}r:{{{rate.counter}}}"], f"{interval} {interval * rate.burst}")
        return made

    async def _scan_script(self, tag: str, keys: list[str], mode: str, args: list[str | int], rate: Rate | None) -> Any:
        """The scan script on one shard's keys (the audit stream first), with the counter's rate checked first:
        in the same call on one Redis, in a call of its own before it on a cluster (the rate key lives in
        another slot). ``args`` are the script's from its fifth on. Over the rate: RateLimitedError."""
        if rate is not None and self._cluster:
            rate_keys, rate_arg = self._rate(rate)
            reply: list[Any] = await self._script(rate_keys, ["rate", rate_arg])
            if reply[0] == -1:
                raise RateLimitedError(rate.counter, int(reply[1]) / 1e6)
            rate = None
        rate_keys, rate_arg = self._rate(rate)
        shard = self._shards[tag]
        reply = await self._script(
            [shard.stream, *keys, *rate_keys], [mode, rate_arg, self._touch, shard.records, *args]
        )
        if reply[0] == -1:
            raise RateLimitedError(rate.counter if rate else "?", int(reply[1]) / 1e6)
        return reply

    async def note(self, tag: str, record: ScanRecord, rate: Rate | None) -> None:
        """See :meth:`verifier.service.ports.ScanStore.note`."""
        await self._scan_script(tag, [], "note", [record.operator or "", AS_DECIDED + record.to_json()], rate)

    async def lookup(
        self, tag: str, counter: str, digest: str, licence_id: str, *, rate: Rate | None, operator: str | None
    ) -> tuple[ScanRecord, bool] | None:
        """See :meth:`verifier.service.ports.ScanStore.lookup`."""
        base = self._shards[tag].base
        keys = [f"{base}c:{counter}:{digest}", f"{base}v:{licence_id}"]
        reply = await self._scan_script(tag, keys, "lookup", [operator or ""], rate)
        if reply[0] != 1:
            return None
        stored: str = reply[1]
        return ScanRecord.from_json(stored[1:]).settled(stored[0]), reply[2] == 1

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """See :meth:`verifier.service.ports.ScanStore.commit`."""
        record = commit.record
        base = self._shards[commit.tag].base
        keys = [
            f"{base}c:{record.counter}:{commit.digest}",
            f"{base}v:{commit.licence_id}",
            f"{base}j:{commit.jti or '-'}",
            f"{base}s:{record.scan_id}",
        ]
        args: list[str | int] = [
            record.operator or "",
            record.to_json(),
            record.counter,
            commit.expires_at,
            max(1, commit.record_ttl),
            record.decision,
            record.scan_id,
            "1" if commit.jti else "0",
        ]
        reply = await self._scan_script(commit.tag, keys, "commit", args, commit.rate)
        if reply[0] == 1:
            stored: str = reply[1]
            return ScanRecord.from_json(stored[1:]).settled(stored[0]), True, reply[2] == 1
        return record.settled(reply[1]), False, reply[2] == 1

    def count(self, fields: Sequence[str]) -> None:
        """See :meth:`verifier.service.ports.ScanStore.count`: added to Redis once a second."""
        self._stats.add(fields)

    async def get_scan(self, scan_id: str) -> tuple[ScanRecord, bool] | None:
        """See :meth:`verifier.service.ports.ScanStore.get_scan`."""
        base = f"{self._prefix}{{{scan_tag(scan_id)}}}:"
        stored: Any = await self._call("GET", f"{base}s:{scan_id}")
        if stored is None:
            return None
        record = ScanRecord.from_json(stored[1:]).settled(stored[0])
        revoked = record.licence_id is not None and await self._call("EXISTS", f"{base}v:{record.licence_id}") == 1
        return record, revoked

    async def set_revoked(self, licence_id: str, revoked: bool, reason: str, ttl: int | None) -> None:
        """See :meth:`verifier.service.ports.ScanStore.set_revoked`."""
        key = f"{self._prefix}{{{shard_tag(licence_id)}}}:v:{licence_id}"
        if not revoked:
            await self._replicated(self._call("DEL", key))
        elif ttl is None:
            await self._replicated(self._call("SET", key, reason or "-"))
        else:
            await self._replicated(self._call("SET", key, reason or "-", "EX", max(1, ttl)))

    async def stats(self) -> dict[str, int]:
        """See :meth:`verifier.service.ports.ScanStore.stats`. This instance's counts are added first."""
        await self._stats.flush()
        now = time.time()
        days = {time.strftime("%Y%m%d", time.gmtime(now - d * 86400)) for d in (0, 1)}
        keys = [f"{self._prefix}stats", *(f"{self._prefix}stats:d:{day}" for day in sorted(days))]
        replies = await asyncio.gather(*(self._call("HGETALL", key) for key in keys))  # pipelined
        out: dict[str, int] = {}
        for reply in map(_fields, replies):
            for name, value in reply.items():
                out[name] = out.get(name, 0) + int(value)
        return out

    async def _replicated(self, write: Awaitable[Any]) -> Any:
        """``write``, and with ``min_replica_acks`` above 0, ``WAIT`` in the same turn, so on the same
        connection right behind it: the write (and, the replication stream being ordered, every write
        before it) counts only once that many replicas acknowledged it, else the store is unavailable (503)."""
        if not self._acks:
            return await write
        result, acked = await asyncio.gather(write, self._wait())
        self._require_acks(acked)
        return result

    def _wait(self) -> Awaitable[Any]:
        return self._call("WAIT", self._acks, self._ack_timeout_ms)

    def _require_acks(self, acked: int) -> None:
        if acked < self._acks:
            raise StoreUnavailableError(f"only {acked} of {self._acks} replicas acknowledged the write in time")

    async def health(self) -> StoreHealth:
        """See :meth:`verifier.service.ports.ScanStore.health`: every primary's ``INFO`` and a probe write on
        each, and one clock. Out of reach: StoreUnavailableError."""
        try:
            health = await self._health()
        except redis_errors.RedisError as exc:  # an error reply (BUSY, MISCONF, NOPERM…): safety not confirmed now
            raise StoreUnavailableError(f"Redis could not be checked: {exc}") from exc
        self._pipe.vouch()  # what answered has been looked at: scans may use its connection
        return health

    async def _health(self) -> StoreHealth:
        probe = f"{self._prefix}probe:{secrets.token_hex(8)}:"
        infos, clock = await asyncio.gather(self._each_primary("INFO"), self._call("TIME", checking=True))
        probes = self._pipe.probe_keys(probe) if isinstance(self._pipe, ClusterCalls) else {"redis": probe}
        written = await asyncio.gather(*(self._probe(key) for key in probes.values()))
        findings = [finding for found in written for finding in found]
        many = len(infos) > 1
        for node, text in sorted(infos.items()):
            findings += self._node_findings(_info(text), f"{node}: " if many else "")
        seconds, micros = (int(x) for x in clock)
        identity = ",".join(_info(text).get("run_id", "?") for _, text in sorted(infos.items()))
        return StoreHealth(tuple(findings), seconds + micros / 1e6, identity)

    def _node_findings(self, info: dict[str, str], node: str) -> list[Finding]:
        """What one primary's ``INFO`` says against keeping claims."""
        findings = []
        policy = info.get("maxmemory_policy", "noeviction")
        if policy != "noeviction":
            evicts = f"{node}maxmemory-policy is {policy}: Redis may evict one-time-use claims (needs noeviction)"
            findings.append(Finding("eviction", evicts))
        if info.get("aof_enabled") != "1" and not self._acks and not self._allow_volatile:
            findings.append(
                Finding(
                    "persistence",
                    f"{node}Redis keeps nothing on disk (appendonly no) and no replica acknowledgement is asked"
                    " (--min-replica-acks 0): a restart forgets every claim and revocation",
                )
            )
        # A replica still in its first full copy (state=wait_bgsave, send_bulk) is connected but acknowledges nothing.
        online = sum(1 for key, value in info.items() if key.startswith("slave") and "state=online" in value)
        if self._acks and online < self._acks:
            findings.append(
                Finding("replicas", f"{node}{online} replicas online, {self._acks} must acknowledge each claim")
            )
        if info.get("loading") == "1":
            findings.append(Finding("loading", f"{node}Redis is loading its data"))
        return findings

    async def _each_primary(self, *args: str | int) -> dict[str, Any]:
        """A keyless command on every primary (one Redis: itself)."""
        if isinstance(self._pipe, ClusterCalls):
            try:
                return await self._pipe.each_primary(*args)
            except _UNAVAILABLE as exc:
                raise StoreUnavailableError(f"Redis unavailable: {exc}") from exc
        return {"redis": await self._call(*args, checking=True)}

    async def _probe(self, key: str) -> list[Finding]:
        """A real write, gone in five seconds: an out-of-memory or read-only Redis refuses it."""
        try:
            await self._call("SET", key, "1", "PX", 5000, checking=True)
        except StoreUnavailableError as exc:
            cause = exc.__cause__
            if isinstance(cause, (redis_errors.OutOfMemoryError, redis_errors.ReadOnlyError)):
                return [Finding("write", f"Redis refuses writes: {cause}")]
            raise
        return []

    async def ping(self) -> None:
        """See :meth:`verifier.service.ports.ScanStore.ping`."""
        await self._call("PING")

    async def close(self) -> None:
        """See :meth:`verifier.service.ports.ScanStore.close`. This instance's counts are added first."""
        await self._stats.close()
        await self._pipe.close()

    def key(self, name: str) -> str:
        """The full name of a key of this store's own (its prefix + ``name``), for modules beside it."""
        return self._prefix + name

    async def command(self, *args: str | int, replicated: bool = False) -> Any:
        """One command on the store's connection, bounded and failing as the store's own calls do
        (StoreUnavailableError): for modules beside the store (verifier.adapters.redis_keys). ``replicated``:
        a write that counts only once ``min_replica_acks`` replicas hold it, as a revocation does."""
        return await (self._replicated(self._call(*args)) if replicated else self._call(*args))


class _Shard:
    """The names of one shard's keys, made once."""

    __slots__ = ("base", "records", "stream")

    def __init__(self, prefix: str, tag: str) -> None:
        self.base = f"{prefix}{{{tag}}}:"
        self.records = f"{self.base}s:"
        self.stream = f"{self.base}audit"


def _info(reply: Any) -> dict[str, str]:
    """``INFO``'s reply as a dict of its fields (text in RESP2; redis-py may have parsed it already)."""
    if isinstance(reply, dict):
        return {k: str(v) for k, v in reply.items()}
    return dict(line.split(":", 1) for line in str(reply).splitlines() if ":" in line and not line.startswith("#"))


def _fields(reply: Any) -> dict[str, str]:
    """HGETALL's reply as a dict: a flat list of names and values in RESP2, a map in RESP3."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))
