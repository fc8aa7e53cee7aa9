"""Serving an app from the command line: "listening" said once the socket is bound, and a socket that
cannot be bound said as what the operator can fix (exit 2), not a traceback."""

from __future__ import annotations

import errno
import socket
import sys
from typing import TextIO

from aiohttp import web

from verifier.cli.failures import cannot_listen
from verifier.errors import UsageError

_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM)


def check_can_listen(host: str, port: int, *, reuse_port: bool = False) -> None:
    """Bind every address ``host`` names once and let them go, before the app starts (and connects to its
    store, and logs), as asyncio will bind them: a host that does not resolve, an address not this
    machine's or a port in use is a UsageError at once."""
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, address in dict.fromkeys((family, address) for family, _, _, _, address in found):
            socket.create_server(address, family=family, reuse_port=reuse_port).close()
    except OSError as exc:
        raise UsageError(cannot_listen(host, port, exc)) from None


def serve_app(
    app: web.Application, host: str, port: int, *, banner: str, reuse_port: bool = False, stream: TextIO | None = None
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM; print ``banner`` once listening (on ``stream``, standard output by
    default). UsageError if it cannot listen. With ``reuse_port`` (workers sharing the port) the master checked
    before starting them: a check here would join the port's group of sockets for a moment, and a connection
    routed to it would be reset."""
    from verifier.web.server import run

    if not reuse_port:
        check_can_listen(host, port)
    try:  # the port may still be taken between the check and the bind
        run(
            app,
            host,
            port,
            reuse_port=reuse_port,
            listening=lambda: print(banner, file=stream or sys.stdout, flush=True),
        )
    except OSError as exc:
        if isinstance(exc, socket.gaierror) or exc.errno in _BIND_ERRORS:
            raise UsageError(cannot_listen(host, port, exc)) from None
        raise
