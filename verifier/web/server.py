"""Serving an app so that what aiohttp's HTTP parser refuses is answered as problem+json too.

A header line past 8190 bytes, too many headers, a request line too long, a broken Content-Length or
TLS bytes on the plain port never reach a handler or middleware: aiohttp's ``RequestHandler.handle_error``
answers them (and any exception that escapes the middleware) itself, in text/plain. aiohttp has no
public hook for that answer (aio-libs/aiohttp#3287 asks for one and is open), so :class:`ProblemRunner`
goes through three private ones: ``RequestHandler.handle_error`` (the answer), ``Server.__call__``
(which names the handler class) and ``AppRunner._make_server`` (which builds the Server).
:func:`run` serves an app with it until SIGINT or SIGTERM, as ``web.run_app`` does.

The runner also serves an app's :data:`DIRECT_ROUTES` (the scan, which every counter calls for every
code it reads) without aiohttp's routing for each request: the route is looked up once at start, and
its handler is called through the app's middlewares straight away — the same handler, middlewares and
``match_info`` as routing gives it, minus a router lookup, a chain of middleware wrappers and a
context manager per request (a re-scan costs 12 % more CPU without it: docs/benchmark.md). A request
for any other method or path, one with a query string or an ``Expect`` header, is routed as usual.

Connections are bounded by the app's :data:`CONNECTION_LIMITS` (aiohttp alone keeps an idle connection an
hour, and waits for a request head as long as a client cares to trickle it):

- a request head not complete within ``header_timeout`` seconds closes the connection — counted from the
  connection's opening for its first request, and from the first byte of each later one (a head that
  begins while the request before it is still being answered is bounded by ``keepalive_timeout`` instead);
- a kept-alive connection idle for ``keepalive_timeout`` seconds is closed (aiohttp's own timer);
- beyond ``max_connections`` open connections in this process, a new connection's request is answered
  503 problem+json with ``Retry-After``, and the connection closed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, InvalidURLError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from verifier.web.eventloop import new_event_loop
from verifier.web.problems import problem

log = logging.getLogger("verifier")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerHandler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]

# The Server header of every answer: the product, never its version nor aiohttp's, which would tell a
# scanner which published flaws to try.
SERVER = "cy-licence-verifier"


def hardened(response: web.StreamResponse) -> web.StreamResponse:
    """``response`` with the headers every answer of the service carries: :data:`SERVER`, ``nosniff`` (a
    browser never reads a JSON answer as a script or a page), and ``Cache-Control: no-store`` unless it
    chose its own caching (the pages and their files do): decisions name licences and must stay in no cache."""
    headers = response.headers
    headers[hdrs.SERVER] = SERVER
    headers["X-Content-Type-Options"] = "nosniff"  # aiohttp.hdrs names it only from 3.14.x, after the lowest we take
    if hdrs.CACHE_CONTROL not in headers:
        headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a connection may take over a request head and stay idle, and how many may be open (the
    module docstring says how each applies). ``dropped`` is told each connection closed for its head's
    timeout (``header_timeout``) or refused over the cap (``over_capacity``)."""

    header_timeout: float = 10.0
    keepalive_timeout: float = 75.0
    max_connections: int = 800
    retry_after: int = 2  # seconds, in the 503 over the cap
    dropped: Callable[[str], None] = lambda reason: None


# The limits an app's connections are served with; an app without them gets ConnectionLimits()'s defaults.
CONNECTION_LIMITS = web.AppKey("connection_limits", ConnectionLimits)

# aiohttp's own words for a refusal (the message up to its first colon, where any client bytes begin),
# lower case -> status and the detail in Chinese and English; the first that matches wins.
_REFUSALS: tuple[tuple[str, int, str], ...] = (
    ("too many headers", 431, "请求头字段过多 / too many header fields"),
    ("duplicate", 400, "只能出现一次的请求头出现了多次 / a header that may appear once appears twice"),
    ("present with content-length", 400, "Content-Length 与 Transfer-Encoding 不能同时出现 / "
     "Content-Length together with Transfer-Encoding"),
    ("content-length", 400, "Content-Length 无效 / invalid Content-Length header"),
    ("transfer-encoding", 400, "Transfer-Encoding 无效 / invalid Transfer-Encoding header"),
    ("chunk", 400, "分块传输编码错误 / malformed chunked body"),
    ("host", 400, "缺少 Host 请求头 / the Host header is missing"),
    ("header", 400, "请求头格式错误 / malformed header line"),
)  # fmt: skip
_MALFORMED = "HTTP 请求格式错误 / malformed HTTP request"


def _named(exc: HttpProcessingError) -> tuple[int, str]:
    """The status and detail for a request aiohttp's parser refused (it says 400 to them all)."""
    if isinstance(exc, LineTooLong):
        return _too_long(exc)
    if isinstance(exc, BadHttpMethod):
        if exc.message.startswith("Received HTTPS"):
            return 400, "此端口只收 HTTP，收到的是 TLS (HTTPS) / TLS (HTTPS) bytes on a plain HTTP port"
        return 400, "请求方法无效 / invalid HTTP method in the request line"
    if isinstance(exc, BadStatusLine):
        return 400, "请求行格式错误 / malformed request line"
    if isinstance(exc, InvalidURLError):
        return 400, "请求地址无效 / invalid request target in the request line"
    said = exc.message.split(":", 1)[0].lower()
    return next(((status, detail) for words, status, detail in _REFUSALS if words in said), (400, _MALFORMED))


def _too_long(exc: LineTooLong) -> tuple[int, str]:
    """414 for the request line, 431 for a header line. aiohttp's message is the same for both, but the
    C parser reports a request target from its bytearray buffer and the pure-Python one the whole line,
    method first; a header line comes as bytes, its name or its value (C) or the line (Python)."""
    text, limit = exc.args[0], exc.args[1]
    if isinstance(text, bytearray) or (isinstance(text, bytes) and re.match(rb"[A-Z]+ ", text)):
        return 414, f"请求行超过 {limit} 字节 / the request line is longer than {limit} bytes"
    return 431, f"有一行请求头超过 {limit} 字节 / a header line is longer than {limit} bytes"


def _answer(status: int, exc: BaseException | None) -> web.Response:
    """The problem+json for what ``handle_error`` was given, the connection to be closed after it: a request
    the parser refused, named and given its own status, or a failure outside any middleware (500, 504)."""
    if isinstance(exc, HttpProcessingError):
        status, detail = _named(exc)
    elif status == 504:
        detail = "处理超时，请求未完成 / the request timed out and was not completed"
    else:
        detail = "服务内部错误，请求未完成 / internal error; the request was not completed"
    response = problem(status, detail)
    response.force_close()
    hardened(response)
    return response


def _over_capacity(limits: ConnectionLimits) -> ServerHandler:
    """The handler of a connection opened beyond ``limits.max_connections``: 503, then the connection closes."""
    detail = (
        f"本服务的连接数已达上限（{limits.max_connections}），请稍后重试 / "
        f"this instance holds its maximum of {limits.max_connections} connections; retry shortly"
    )

    async def refuse(request: BaseRequest) -> web.StreamResponse:
        response = problem(503, detail, headers={hdrs.RETRY_AFTER: str(limits.retry_after)})
        response.force_close()
        hardened(response)
        return response

    return refuse


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problem+json, closing a connection whose
    request head is late, and refusing one beyond the server's cap (see the module docstring)."""

    __slots__ = ("_head_deadline", "_limits")

    def __init__(self, manager: ProblemServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = manager.limits
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the first head's clock; beyond the cap, answer this connection's request with 503."""
        manager = cast(ProblemServer, self._manager)
        if len(manager.connections) >= self._limits.max_connections:  # this one not yet among them
            self._request_handler = manager.refuse_over_capacity
            self._limits.dropped("over_capacity")
        super().connection_made(transport)
        self._head_deadline = self._loop.call_later(self._limits.header_timeout, self._head_overdue)

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does; then a head completed stops its clock, and the first bytes of a head
        arriving on a connection waiting for one start it."""
        super().data_received(data)
        if self._head_deadline is not None:
            if self._messages:  # a complete head (and whatever body came with it) is queued
                self._head_deadline.cancel()
                self._head_deadline = None
        elif data and (waiter := self._waiter) is not None and not waiter.done():  # bytes, and still no head
            self._head_deadline = self._loop.call_later(self._limits.header_timeout, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_deadline = None
        waiter = self._waiter
        if waiter is not None and not waiter.done() and not self._messages:  # still waiting for the head
            self._limits.dropped("header_timeout")
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the head's clock with the connection."""
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """Log as aiohttp does and keep its guard (it raises ConnectionError once a response has begun),
        then answer with the problem instead of its text."""
        super().handle_error(request, status, exc, message)
        return _answer(status, exc)


class ProblemServer(Server):
    """A Server whose connections are :class:`ProblemRequestHandler`, held to ``limits``."""

    def __init__(self, handler: ServerHandler, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.refuse_over_capacity = _over_capacity(limits)

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


# (method, path) of the plain routes the runner serves without routing each request (see the docstring).
DIRECT_ROUTES = web.AppKey("direct_routes", tuple[tuple[str, str], ...])


def _direct(app: web.Application, routed: ServerHandler) -> ServerHandler:
    """``routed`` (the app's own handling), except for the app's direct routes."""
    direct: dict[tuple[str, str], tuple[UrlMappingMatchInfo, Handler]] = {}
    for method, path in app.get(DIRECT_ROUTES, ()):
        (route,) = (
            r for r in app.router.routes() if r.method == method and r.resource and r.resource.canonical == path
        )
        match_info = UrlMappingMatchInfo({}, route)
        match_info.add_app(app)
        match_info.freeze()  # shared by every request of the route: it holds nothing of a request's
        handler: Handler = route.handler
        for middleware in reversed(app.middlewares):  # new-style middlewares, as aiohttp chains them
            handler = functools.partial(middleware, handler=handler)
        direct[method, path] = (match_info, handler)
    if not direct:
        return routed

    async def handle(request: BaseRequest) -> web.StreamResponse:
        found = direct.get((request.method, request.raw_path))
        if found is None or hdrs.EXPECT in request.headers:
            return await routed(request)
        made = cast(web.Request, request)  # the app's request factory makes web.Request
        made._match_info, handler = found  # noqa: SLF001  (what Application._handle sets after routing)
        return await handler(made)

    return handle


class ProblemRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`ProblemServer` with the app's :data:`CONNECTION_LIMITS`,
    and the app's direct routes directly."""

    async def _make_server(self) -> Server:
        base = await super()._make_server()  # starts the app and sets every argument as aiohttp does
        limits = self.app.get(CONNECTION_LIMITS) or ConnectionLimits()
        # The Server aiohttp built, rebuilt as a ProblemServer with the same arguments: its loop and keyword
        # arguments have no public accessor (aiohttp is capped in pyproject.toml for these).
        kwargs = {**base._kwargs, "keepalive_timeout": limits.keepalive_timeout}  # noqa: SLF001
        return ProblemServer(
            _direct(self.app, base.request_handler),
            limits=limits,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,  # noqa: SLF001
            **kwargs,
        )


def _open_files_for(connections: int) -> None:
    """Raise this process's soft limit of open files to its hard limit, as Go's runtime does at start: a
    common soft limit of 1,024 is near the connection cap, and once connections use it up, accept() fails
    for every client, the store's connection and the log included. Says so if it is still too low."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    spare = 64  # the listening sockets, the store's connections, the log, the trust source
    if soft != resource.RLIM_INFINITY and soft < connections + spare:
        log.warning(
            "at most %d open files: below --max-connections %d plus %d; raise the limit (ulimit -n) / "
            "可打开文件数上限 %d 低于最大连接数 %d 加 %d，请调高 ulimit -n",
            soft, connections, spare, soft, connections, spare,
        )  # fmt: skip


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    listening: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` (no access log) until SIGINT or SIGTERM, then shut it down gracefully.
    ``listening`` is called once the socket is bound, so nothing says "listening" before it is. A socket
    that cannot be bound (the port in use, an address not this machine's, a name that does not resolve)
    raises its OSError, after the app has been cleaned up."""
    _open_files_for((app.get(CONNECTION_LIMITS) or ConnectionLimits()).max_connections)

    async def serve() -> None:
        runner = ProblemRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            if listening is not None:
                listening()
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=new_event_loop) as loop:
        loop.run(serve())
