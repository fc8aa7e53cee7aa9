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
"""

from __future__ import annotations

import asyncio
import functools
import re
import signal
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, HttpProcessingError, InvalidURLError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from verifier.web.eventloop import new_event_loop
from verifier.web.problems import problem

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
    return response


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problem+json."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """Log as aiohttp does and keep its guard (it raises ConnectionError once a response has begun),
        then answer with the problem instead of its text."""
        super().handle_error(request, status, exc, message)
        return _answer(status, exc)


class ProblemServer(Server):
    """A Server whose connections are :class:`ProblemRequestHandler`."""

    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerHandler = Callable[[BaseRequest], Awaitable[web.StreamResponse]]
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
    """``web.AppRunner`` serving through :class:`ProblemServer`, and the app's direct routes directly."""

    async def _make_server(self) -> Server:
        base = await super()._make_server()  # starts the app and sets every argument as aiohttp does
        # The Server aiohttp built, rebuilt as a ProblemServer with the same arguments: its loop and keyword
        # arguments have no public accessor (aiohttp is capped in pyproject.toml for these).
        return ProblemServer(
            _direct(self.app, base.request_handler),
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,  # noqa: SLF001
            **base._kwargs,  # noqa: SLF001
        )


def run(app: web.Application, host: str, port: int, *, reuse_port: bool = False) -> None:
    """Serve ``app`` on ``host:port`` (no access log) until SIGINT or SIGTERM, then shut it down gracefully."""

    async def serve() -> None:
        runner = ProblemRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=new_event_loop) as loop:
        loop.run(serve())
