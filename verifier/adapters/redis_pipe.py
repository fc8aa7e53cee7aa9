"""One Redis connection shared by every caller: commands written back to back, replies matched in order.

What: :class:`RedisPipe` keeps one redis-py connection and lets any number of coroutines use it at
once. A call packs its command (:func:`pack`, byte for byte as redis-py packs it, at a third of the
cost), adds it to the bytes to write and queues a future; what one turn of the event loop queued is
written at the next turn in one send, without waiting for the socket to drain. One reader task reads
the replies with redis-py's parser and resolves the queued futures in order. redis-py still connects
(TCP, TLS or a unix socket), authenticates, selects the database and parses; this module multiplexes.

Why: the scan path makes one Redis call a scan (an EVALSHA). Through redis-py's client
(``Redis.execute_command``: pool get and release, the Retry wrapper, timeouts, pack, send and drain,
read) that call cost about 64 µs (a re-scan's lookup) and 77 µs (a cold scan's commit) of the
service's CPU; written on a multiplexed connection the same calls cost about 22 µs and 35 µs, and
writing a turn's commands in one send saved about 10 µs more a call with 32 callers at once.

Guarantees:

* FIFO alignment. Redis answers a connection's commands in the order it received them. A command is
  added to the bytes to write and its future queued in one step (no await in between), and the bytes
  go out in that order, so the n-th reply read is the n-th queued call's. A caller that gives up
  (cancelled) leaves its future queued; its reply is read and dropped, so no reply reaches another call.
* Fail closed. An error reply (``ResponseError``, ``NoScriptError``…) fails only its own call. A lost
  connection (EOF, a socket error, a reply nobody asked for) fails every call waiting on it with a
  redis ``ConnectionError`` and is dropped; the next call connects afresh, so no connection outlives
  the server it was opened to (a restarted Redis is met with a new connection).
* Bounded wait. Every call is answered or failed within ``timeout`` of its start (plus the event loop's
  own delay): a connect is bounded by ``connect_timeout`` and by the call's deadline, and one timer —
  armed only while calls wait, at the oldest call's deadline — checks the oldest waiting call. When it
  is overdue (Redis frozen by SIGSTOP, or gone without a word) the connection is dropped: the overdue
  calls fail with a redis ``TimeoutError``, the others with a ``ConnectionError``, so the backlog never
  grows without bound, and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from verifier.adapters.redis_urls import parse_hosts_url
from verifier.errors import StoreMisconfiguredError

# Past this many bytes not yet taken by the socket, a call waits for the write buffer to drain
# (Redis too slow, or frozen until the deadline drops the connection); below it no call awaits a drain.
# The commands of one event-loop turn are written together, at the next turn.
WRITE_BUFFER_LIMIT = 256 * 1024
_MIN_TICK = 0.005  # the deadline timer never re-arms sooner than this


SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


def _sentinel_pool(url: str, connect_timeout: float, options: dict[str, Any]) -> SentinelConnectionPool:
    """redis-py's pool for the primary of ``redis+sentinel://[user:pass@]host:port[,host:port…]/SERVICE[/db]``.
    Its connections ask the sentinels for the primary's address each time they connect, and one that
    meets a demoted primary (READONLY) disconnects and says ConnectionError: the pipe drops it, and its
    next connection finds the new primary — a failover needs no restart. The user and password are the
    data nodes'; the sentinels are asked without."""
    parsed = parse_hosts_url(url, "sentinel")
    sentinels = list(parsed.hosts)
    path = parsed.path
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError(f"{url!r}: the path is /SERVICE or /SERVICE/db (the name the sentinels monitor)")
    # redis-py asks the sentinels one after the other within the connect's budget: each gets a share of it,
    # so a frozen sentinel first in the list cannot use the whole of it.
    ask = connect_timeout / (len(sentinels) + 1)
    manager = Sentinel(sentinels, socket_timeout=ask, socket_connect_timeout=ask)  # type: ignore[no-untyped-call]
    return SentinelConnectionPool(  # type: ignore[no-untyped-call]
        path[0],
        manager,
        db=int(path[1]) if len(path) == 2 else 0,
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.scheme == "rediss+sentinel",
        **options,
    )


def pack(args: tuple[str | int | bytes, ...]) -> bytes:
    """A command in RESP, byte for byte as redis-py's ``pack_command`` writes it, for the kinds of
    argument the store sends (text as UTF-8, integers in decimal, bytes as they are). A third of its
    cost: packing was the largest part of a re-scan's Redis call left in Python."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)  # exact types: a bool is an int to isinstance()
        if kind is str:
            data = cast(str, arg).encode()
        elif kind is bytes:
            data = cast(bytes, arg)
        elif kind is int:
            data = b"%d" % cast(int, arg)
        else:  # bool, float, None…: nothing the store sends, and redis-py would write them otherwise
            raise TypeError(f"cannot send a {kind.__name__} to Redis")
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class _Link:
    """One connected connection, the futures waiting for its replies and its reader."""

    __slots__ = ("alive", "conn", "loop", "outgoing", "pending", "reader", "timer", "transport", "writer")

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: AbstractConnection, writer: asyncio.StreamWriter) -> None:
        self.loop = loop
        self.conn = conn
        self.writer = writer
        self.transport = writer.transport
        self.outgoing: list[bytes] = []  # packed commands of this turn, written by RedisPipe._flush
        self.pending: deque[tuple[asyncio.Future[Any], float]] = deque()  # (future, deadline), oldest first
        self.timer: asyncio.TimerHandle | None = None
        self.reader: asyncio.Task[None] | None = None
        self.alive = True


class RedisPipe:
    """A multiplexed Redis connection; see the module's docstring. Connects at the first call."""

    def __init__(
        self,
        make_connection: Callable[[], AbstractConnection],
        *,
        timeout: float = 1.0,
        connect_timeout: float = 0.5,
        sentinels: Sentinel | None = None,
        guarded: bool = False,
    ) -> None:
        self._make_connection = make_connection  # an unconnected redis-py connection, decode_responses=True
        self._sentinels = sentinels  # the clients that ask the sentinels, closed with the pipe
        # Guarded: only a call made ``checking`` may open a connection, and other calls are served only on a
        # connection a check has vouched for (:meth:`vouch`), so nothing is written to a Redis that came back
        # as another Redis (restarted empty, a failover) before its safety has been checked.
        self._guarded = guarded
        self._vouched: _Link | None = None
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._link: _Link | None = None  # alive whenever set
        self._connecting: asyncio.Task[_Link] | None = None  # the one connect attempt every caller waits on
        self._closed = False

    @classmethod
    def from_url(
        cls, url: str, *, timeout: float = 1.0, connect_timeout: float | None = None, guarded: bool = False
    ) -> RedisPipe:
        """``redis://``, ``rediss://`` or ``unix://``, with user, password, db and query options as
        redis-py reads them; or ``redis+sentinel://`` (``rediss+sentinel://``) for Redis behind Sentinel.
        The pool only yields the connection class and its arguments."""
        connect_timeout = timeout / 2 if connect_timeout is None else connect_timeout
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": None,
            "socket_connect_timeout": connect_timeout,
        }
        if url.startswith(SENTINEL_SCHEMES):
            sentinel_pool = _sentinel_pool(url, connect_timeout, options)
            return cls(
                sentinel_pool.make_connection,
                timeout=timeout,
                connect_timeout=connect_timeout,
                sentinels=sentinel_pool.sentinel_manager,
                guarded=guarded,
            )
        pool = ConnectionPool.from_url(url, **options)
        return cls(pool.make_connection, timeout=timeout, connect_timeout=connect_timeout, guarded=guarded)

    async def call(self, *args: str | int | bytes, checking: bool = False) -> Any:
        """Send one command and return its reply (as redis-py parses it: RESP, no response callbacks).

        Raises redis ``ResponseError`` for an error reply, ``ConnectionError`` or ``TimeoutError`` when
        Redis cannot be reached or does not answer within the timeout — and, on a guarded pipe, when the
        connection has not been vouched for and the call is not ``checking``."""
        link = self._link
        if self._guarded and not checking and (link is None or link is not self._vouched):
            raise RedisConnectionError("Redis connection not checked since it was opened")
        if link is None:
            deadline = asyncio.get_running_loop().time() + self._timeout
            link = await self._connected(deadline)
        else:
            deadline = link.loop.time() + self._timeout
        packed = pack(args)
        outgoing = link.outgoing
        if not outgoing:
            link.loop.call_soon(self._flush, link)
        outgoing.append(packed)
        waiter: asyncio.Future[Any] = link.loop.create_future()
        pending = link.pending
        if pending and pending[-1][1] > deadline:  # only a call that waited for the connection
            self._clamp(link, deadline)
        pending.append((waiter, deadline))
        if link.timer is None:
            link.timer = link.loop.call_at(deadline, self._sweep, link)
        if link.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            await self._drain(link, waiter)
        # If this caller is cancelled here, its future stays queued and the reader drops its reply.
        return await waiter

    def vouch(self) -> None:
        """The connection in use has been checked: serve every call on it (until it is replaced)."""
        self._vouched = self._link

    def _flush(self, link: _Link) -> None:
        """Write the commands queued since the last turn, in their order, in one send."""
        if not link.alive:
            return
        try:
            link.transport.write(b"".join(link.outgoing))
        except (RuntimeError, OSError) as exc:  # the transport is closing under us
            self._drop(link, f"Error writing to Redis: {exc}")
        link.outgoing.clear()

    async def close(self) -> None:
        """Fail whatever waits, close the connection; later calls raise ``ConnectionError``."""
        self._closed = True
        connecting = self._connecting
        if connecting is not None:
            connecting.cancel()
            await asyncio.wait({connecting})
        link = self._link
        if link is not None:
            self._drop(link, "Redis connection closed")
            if link.reader is not None:
                await asyncio.wait({link.reader})
        if self._sentinels is not None:
            for client in self._sentinels.sentinels:
                await client.aclose()

    async def _connected(self, deadline: float) -> _Link:
        """The live link, after the one connect attempt every concurrent caller shares."""
        if self._closed:
            raise RedisConnectionError("Redis connection closed")
        task = self._connecting
        if task is None:
            task = self._connecting = asyncio.get_running_loop().create_task(self._open())
            task.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout_at(deadline):
                link = await asyncio.shield(task)  # a caller giving up does not cancel the others' attempt
        except TimeoutError as exc:
            raise RedisTimeoutError("Timeout connecting to Redis") from exc
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling() == 0:  # close() ended the attempt, not this caller
                raise RedisConnectionError("Redis connection closed") from None
            raise
        if not link.alive:  # lost again before this caller woke up
            raise RedisConnectionError("Redis connection lost")
        return link

    async def _open(self) -> _Link:
        conn = self._make_connection()
        try:
            try:
                # The whole handshake (AUTH, SELECT…) is bounded, not just the socket's connect.
                async with asyncio.timeout(self._connect_timeout):
                    await conn.connect()  # type: ignore[no-untyped-call]
            except TimeoutError as exc:  # builtin; redis-py's own TimeoutError is a RedisError
                raise RedisTimeoutError(f"Timeout connecting to Redis ({self._connect_timeout} s)") from exc
            except ResponseError as exc:  # the handshake refused as the URL asks it: a database Redis does not have
                raise StoreMisconfiguredError(
                    f"Redis 拒绝了连接设置（{exc}），请检查 --redis-url 中的数据库编号"
                    f" / Redis refused the connection's set-up ({exc}): check the database number in --redis-url"
                ) from exc
            # redis-py's private _writer (the one such use; redis is capped in pyproject.toml): its transport is
            # written to directly, since send_command awaits a drain per call.
            writer = conn._writer  # noqa: SLF001
            if writer is None:
                raise RedisConnectionError("Redis connection lost while connecting")
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)
            raise
        finally:
            self._connecting = None
        loop = asyncio.get_running_loop()
        link = _Link(loop, conn, writer)
        link.reader = loop.create_task(self._read(link))
        self._link = link
        return link

    async def _read(self, link: _Link) -> None:
        """Resolve the link's futures with its replies, in order, until the connection ends."""
        conn, pending = link.conn, link.pending
        reason = "Redis connection lost"
        try:
            while True:
                try:
                    reply: Any = await conn.read_response()
                except ResponseError as exc:  # an error reply: its own call fails, the connection is fine
                    reply = exc
                if not link.alive:  # dropped meanwhile: every waiter has been failed already
                    return
                if not pending:
                    reason = "Redis sent a reply nobody asked for"
                    return
                waiter = pending.popleft()[0]
                # A cancelled caller's future is still here, in its place: its reply is read and dropped
                # now, so the next reply goes to the next caller. (redis-py itself once answered a command
                # with the reply meant for a cancelled one: a reply left unread on a connection is read by
                # whoever uses the connection next.)
                if waiter.done():
                    continue
                if isinstance(reply, ResponseError):
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)
        except Exception as exc:  # EOF, a socket or protocol error: redis-py has disconnected already
            reason = f"Redis connection lost: {exc}"
        finally:
            self._drop(link, reason)
            with contextlib.suppress(Exception):
                await conn.disconnect(nowait=True)

    async def _drain(self, link: _Link, waiter: asyncio.Future[Any]) -> None:
        try:
            await link.writer.drain()
        except asyncio.CancelledError:
            waiter.cancel()  # nobody will await it; it stays queued and its reply is dropped
            raise
        except Exception as exc:  # the connection was lost (or dropped by the deadline) while draining
            self._drop(link, f"Redis connection lost: {exc}")

    def _clamp(self, link: _Link, deadline: float) -> None:
        """Keep deadlines in queue order: calls queued before this one give up no later than it does
        (their replies come first, so if this call's is late, theirs are too)."""
        pending = link.pending
        i = len(pending) - 1
        while i >= 0 and pending[i][1] > deadline:
            pending[i] = (pending[i][0], deadline)
            i -= 1
        if link.timer is not None and link.timer.when() > deadline:
            link.timer.cancel()
            link.timer = link.loop.call_at(deadline, self._sweep, link)

    def _sweep(self, link: _Link) -> None:
        """The deadline timer: drop the connection when its oldest waiting call is overdue."""
        link.timer = None
        if not link.alive or not link.pending:
            return  # re-armed by the next call
        now = link.loop.time()
        first = link.pending[0][1]
        if first > now:
            link.timer = link.loop.call_at(max(first, now + _MIN_TICK), self._sweep, link)
            return
        self._drop(link, "Redis connection dropped: an earlier call got no reply in time", overdue_at=now)

    def _drop(self, link: _Link, reason: str, *, overdue_at: float | None = None) -> None:
        """Fail every waiting call, abort the connection (its reader then ends and disconnects)."""
        if not link.alive:
            return
        link.alive = False
        if self._link is link:
            self._link = None
        if link.timer is not None:
            link.timer.cancel()
            link.timer = None
        link.transport.abort()  # at once: close() would first flush what is buffered, to a server that may be frozen
        link.outgoing.clear()
        pending = link.pending
        while pending:
            waiter, deadline = pending.popleft()
            if waiter.done():
                continue
            if overdue_at is not None and deadline <= overdue_at:
                waiter.set_exception(RedisTimeoutError(f"Redis did not answer within {self._timeout} s"))
            else:
                waiter.set_exception(RedisConnectionError(reason))


def _retrieve(task: asyncio.Task[Any]) -> None:
    """A failed connect attempt whose callers all gave up is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
