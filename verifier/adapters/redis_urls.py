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
