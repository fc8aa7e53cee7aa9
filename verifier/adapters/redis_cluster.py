"""The store's Redis calls on a Redis Cluster (``redis+cluster://``), through redis-py's ``RedisCluster``:
it routes each command to its slot's primary, follows MOVED and ASK while slots move, and learns the
cluster's shape again when it changes. A scan's keys share one slot (their hash tag, the licence's tag),
so the scan script runs on one primary; the statistics are added by key (verifier.adapters.redis_stats).

What a cluster asks of the store that one Redis does not: the safety checks look at every primary
(:meth:`ClusterCalls.each_primary`, :meth:`ClusterCalls.probe_keys`). Replica acknowledgement
(``WAIT``) must follow the write on the same connection, which a pooled cluster client cannot promise:
with a cluster, ``--min-replica-acks`` is refused, and each primary needs its append-only file.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from verifier.adapters.redis_urls import parse_hosts_url

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def cluster_from_url(url: str, *, timeout: float, connect_timeout: float) -> RedisCluster:
    """``redis+cluster://[user:pass@]host:port[,host:port…]``: any nodes, as seeds."""
    parsed = parse_hosts_url(url, "cluster node")
    if parsed.path:
        raise ValueError(f"{url!r}: a cluster has one database; the URL names nodes only")
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.hosts],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.scheme == "rediss+cluster",
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
    )


class ClusterCalls:
    """The store's calls (``call``, ``close``) on a cluster, and what its safety checks need of every primary."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster

    async def call(self, *args: str | int, checking: bool = False) -> Any:
        """One command, sent to the primary of its keys' slot (a keyless one to any primary). redis-py
        opens and replaces the nodes' connections itself: ``checking`` changes nothing here."""
        try:
            return await self._cluster.execute_command(*args)
        except (AttributeError, TypeError) as exc:
            # redis-py writes to a pooled connection the peer has closed (a node's connections reset while
            # a slot moves) through a transport asyncio has torn down, and says AttributeError or TypeError
            # instead of ConnectionError (redis/redis-py#4287). The command was not sent: an outage, 503.
            raise RedisConnectionError(f"Redis connection lost while writing: {exc!r}") from exc

    async def each_primary(self, *args: str | int) -> dict[str, Any]:
        """One keyless command on every primary: node name -> reply."""
        replies = await self._cluster.execute_command(*args, target_nodes=RedisCluster.PRIMARIES)
        primaries = self._cluster.get_primaries()
        if len(primaries) == 1:  # one primary: redis-py answers with its reply alone (INFO already a dict)
            return {primaries[0].name: replies}
        return dict(replies)

    def probe_keys(self, prefix: str) -> dict[str, str]:
        """A key on each primary (node name -> key), for a probe write on every one of them."""
        wanted = {node.name for node in self._cluster.get_primaries()}
        keys: dict[str, str] = {}
        for n in range(100_000):
            key = f"{prefix}{{{n}}}"
            node = self._cluster.get_node_from_key(key)
            if node is not None and node.name in wanted and node.name not in keys:
                keys[node.name] = key
                if len(keys) == len(wanted):
                    break
        return keys

    def vouch(self) -> None:
        """Nothing to vouch for: the cluster client's connections are its own (see :meth:`call`)."""

    async def close(self) -> None:
        """Close every node's connections."""
        await self._cluster.aclose()
