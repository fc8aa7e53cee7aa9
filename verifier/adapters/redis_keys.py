"""Counter and administrator API keys in the shared store, so that every instance knows the same keys:
a key issued, replaced or revoked on one host works, or stops working, on every instance within a second.

One Redis hash holds them (one key, so one Cluster slot)::

    cy:api-keys   principal -> SHA-256 of its key (never the key)
                  #generation -> a random value, new at every change

A change is one script, so the hash and its generation never disagree. Each instance keeps a copy of
the hashes: a scan's key check is a dictionary lookup, never a Redis call. Every half second it reads
the generation (one ``HGET``, off the scan path) and, when it moved, the whole hash (one ``HGETALL``).
The generation is random rather than counted up, so a Redis that comes back having lost its last
changes can never show a number this instance has already seen with other contents.

Until the first read succeeds the instance knows no key, and says so as the store being unavailable
(503), not as a wrong key (401). While Redis is out of reach it keeps the copy it last read (scans,
revocations and statistics cannot be served then anyway).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

from verifier.adapters.api_keys import holder, new_key
from verifier.adapters.redis_store import RedisStore
from verifier.errors import KeyExistsError, StoreUnavailableError

log = logging.getLogger("verifier")

_GENERATION = "#generation"  # no principal starts with '#'
# KEYS[1] the hash; ARGV[1] 'issue'|'revoke', ARGV[2] principal, ARGV[3] the key's hash, ARGV[4] '1' to
# replace a key the principal has, ARGV[5] the new generation. Answers 1 when it changed something.
_CHANGE = (
    """
if ARGV[1] == 'revoke' then
  if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
elseif ARGV[4] ~= '1' and redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 then
  return 0
else
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('HSET', KEYS[1], '"""
    + _GENERATION
    + """', ARGV[5])
return 1
"""
)
REFRESH_EVERY = 0.5  # seconds between reads of the generation
SEEN_WITHIN = 2 * REFRESH_EVERY  # every instance reading Redis has seen a change this long after it


class RedisKeys:
    """The key hashes in the shared store: changed by the key commands, read by every instance."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store
        self._name = store.key("api-keys")
        self._hashes: dict[str, str] = {}
        self._generation: str | None = None
        self._loaded = False

    async def _change(self, action: str, principal: str, hashed: str, *, replace: bool) -> bool:
        args = (action, principal, hashed, "1" if replace else "0", secrets.token_hex(16))
        # Replicated as a licence revocation is: a revoked key must not come back with a failover.
        changed: int = await self._store.command("EVAL", _CHANGE, 1, self._name, *args, replicated=True)
        return changed == 1

    async def issue(self, principal: str, *, replace: bool = False) -> str:
        """A fresh key for ``principal``, valid on every instance within a second. If it has one already,
        that key is replaced when ``replace`` is true; otherwise :class:`verifier.errors.KeyExistsError`."""
        key, hashed = new_key(principal)
        if not await self._change("issue", principal, hashed, replace=replace):
            raise KeyExistsError(principal)
        return key

    async def revoke(self, principal: str) -> bool:
        """Make ``principal``'s key invalid on every instance within a second; False if it had none."""
        return await self._change("revoke", principal, "", replace=False)

    async def refresh(self) -> None:
        """Read the hashes again if they changed since the last read. StoreUnavailableError if Redis
        cannot be reached (the copy stays as it was)."""
        generation = await self._store.command("HGET", self._name, _GENERATION)
        if self._loaded and generation == self._generation:
            return
        hashes = _fields(await self._store.command("HGETALL", self._name))
        self._generation = hashes.pop(_GENERATION, None)  # read with the hashes, so it matches them
        if self._loaded and hashes != self._hashes:
            log.info(json.dumps({"event": "api_keys_changed", "keys": len(hashes)}))
        self._hashes = hashes
        self._loaded = True

    async def run_periodic(self, interval: float = REFRESH_EVERY) -> None:
        """Refresh every ``interval`` seconds, for as long as the service runs."""
        while True:
            try:
                await self.refresh()
            except StoreUnavailableError:
                pass  # the store check reports an unreachable store; the copy stays until Redis answers
            except Exception:  # a fault of the data (say, not a hash): said, and tried again
                log.exception("the API keys could not be read from Redis")
            await asyncio.sleep(interval)

    def principal(self, key: str) -> str | None:
        """Who holds ``key`` (a counter id or the administrator), or None. StoreUnavailableError until
        the hashes have been read once: no key is refused for want of a read."""
        if not self._loaded:
            raise StoreUnavailableError("API keys not read from Redis yet / 尚未从 Redis 读取密钥")
        return holder(self._hashes, key)


def _fields(reply: Any) -> dict[str, str]:
    """HGETALL's reply as a dict: a flat list of names and values on the multiplexed connection, a dict
    from redis-py's cluster client."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return dict(zip(reply[::2], reply[1::2], strict=True))
