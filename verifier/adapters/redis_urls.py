"""Redis URLs that name several hosts (``redis+sentinel://``, ``redis+cluster://``), which redis-py's own
URL parser does not read."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HostsURL:
    """``scheme://[user:pass@]host:port[,host:port…][/path…]``, taken apart."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    path: tuple[str, ...]  # the path's segments
    username: str | None
    password: str | None


def parse_hosts_url(url: str, what: str) -> HostsURL:
    """``url`` taken apart; a ValueError naming ``what`` the hosts are (sentinel, cluster node) if one is
    not host:port."""
    parts = urllib.parse.urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    found = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"{url!r}: each {what} is host:port, not {host!r}")
        found.append((name.strip("[]"), int(port)))
    return HostsURL(
        parts.scheme,
        tuple(found),
        tuple(segment for segment in parts.path.split("/") if segment),
        urllib.parse.unquote(username) or None,
        urllib.parse.unquote(password) or None,
    )


# An example of each form, for the message that refuses one.
_EXAMPLES = {
    "unix": "unix:///run/redis/redis.sock",
    "redis+sentinel": "redis+sentinel://127.0.0.1:26379/mymaster",
    "redis+cluster": "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
}
_PLAIN = ("redis", "rediss", "unix")
_SENTINEL = ("redis+sentinel", "rediss+sentinel")
_CLUSTER = ("redis+cluster", "rediss+cluster")


def redacted(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    credentials, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


def check_redis_url(url: str) -> None:
    """A ValueError saying in Chinese and English what is wrong if ``url`` is not of a form the store reads
    (``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://``, ``redis+cluster://``): an unknown
    scheme, a host that is not host:port, a port out of range, a database that is not a number. What only
    the server can answer (a database it does not have, a password it refuses) is left to the connection."""
    shown = redacted(url)
    scheme = urllib.parse.urlsplit(url).scheme.lower() if "://" in url else ""
    if scheme not in (*_PLAIN, *_SENTINEL, *_CLUSTER):
        zh, en = (
            "开头应为 redis://、rediss://、unix://、redis+sentinel:// 或 redis+cluster://",
            ("it must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"),
        )
    else:
        zh, en = _plain(url) if scheme in _PLAIN else _hosts(url, sentinel=scheme in _SENTINEL)
    if zh:
        example = _EXAMPLES.get(scheme.replace("rediss", "redis"), "redis://127.0.0.1:6379/0")
        raise ValueError(f"Redis 地址 {shown!r} 有误：{zh}，例如 {example} / Redis URL {shown!r}: {en}, e.g. {example}")


def _port(number: int) -> tuple[str, str]:
    if 1 <= number <= 65535:
        return "", ""
    return f"端口 {number} 超出 1–65535", f"port {number} is out of range 1-65535"


def _db(text: str) -> tuple[str, str]:
    if not text or text.isdigit():
        return "", ""
    return f"数据库编号须为数字，而不是 {text!r}", f"the database is a number, not {text!r}"


def _plain(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        if not parts.path:
            return "unix:// 后须写套接字的路径", "unix:// needs the socket's path"
    else:
        try:
            number = parts.port
        except ValueError:
            return "端口须为 1–65535 的数字", "the port must be a number from 1 to 65535"
        found = _port(number) if number is not None else ("", "")
        if found[0]:
            return found
        found = _db(parts.path.strip("/"))
        if found[0]:
            return found
    for db in urllib.parse.parse_qs(parts.query).get("db", []):
        found = _db(db)
        if found[0]:
            return found
    return "", ""


def _hosts(url: str, *, sentinel: bool) -> tuple[str, str]:
    try:
        parsed = parse_hosts_url(url, "sentinel" if sentinel else "cluster node")
    except ValueError:
        return "每个节点须写成 host:port", "each node is host:port"
    for _, number in parsed.hosts:
        found = _port(number)
        if found[0]:
            return found
    path = parsed.path
    if not sentinel:
        return (
            ("集群只有一个数据库，地址中只写节点", "a cluster has one database: name the nodes only")
            if path
            else ("", "")
        )
    if not path or len(path) > 2:
        return "路径应为 /SERVICE 或 /SERVICE/db（哨兵监控的名称）", "the path is /SERVICE or /SERVICE/db"
    return _db(path[1]) if len(path) == 2 else ("", "")
