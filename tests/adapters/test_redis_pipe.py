"""The multiplexed Redis connection against a real redis-server: every reply reaches its own call, an
error reply fails only its call, cancelled callers shift nothing, and a stopped, frozen or restarted
Redis is met within the deadline and recovered from without any manual step."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis import exceptions as redis_errors
from redis.asyncio import Connection, Redis

from tests.redis_server import RedisServer
from verifier.adapters.redis_pipe import RedisPipe, pack

pytestmark = pytest.mark.redis

TIMEOUT = 1.0
SLACK = 0.2  # the deadline timer's precision plus scheduling: every failure comes within TIMEOUT + SLACK
FAILED = (redis_errors.ConnectionError, redis_errors.TimeoutError)


@pytest.fixture
async def pipe(redis_server: RedisServer) -> AsyncIterator[RedisPipe]:
    """A pipe to the session Redis."""
    pipe = RedisPipe.from_url(redis_server.url, timeout=TIMEOUT)
    yield pipe
    await pipe.close()


async def timed(call: Any) -> tuple[Any, float]:
    """The outcome of an awaitable (its result or exception) and the seconds it took."""
    started = time.monotonic()
    try:
        outcome = await call
    except Exception as exc:
        outcome = exc
    return outcome, time.monotonic() - started


async def fill(pipe: RedisPipe, prefix: str, count: int) -> dict[str, str]:
    """``count`` distinct keys, each holding a value of its own."""
    values = {f"{prefix}:{i}": f"value-{prefix}-{i}-{random.random()}" for i in range(count)}
    assert await asyncio.gather(*(pipe.call("SET", k, v, "EX", 60) for k, v in values.items())) == ["OK"] * count
    return values


async def own_values(pipe: RedisPipe, values: dict[str, str]) -> None:
    """Concurrent GETs each return their own key's value."""
    keys = list(values)
    assert await asyncio.gather(*(pipe.call("GET", k) for k in keys)) == [values[k] for k in keys]


@pytest.mark.parametrize(
    "args",
    [
        ("EVALSHA", "a" * 40, 3, "cy:{t}:c:cq-notary-zhixin-01:d", "cy:{t}:v:driving-licence|SC|5101", "cy:stats"),
        ("SET", "k", "张*·电子证照 ✓", "EX", 86_400),
        ("SET", "", "line\r\nbreak $3\r\n", "PX", -1, 0, 2**70),
        ("GET", b"\x00\xff raw\r\n"),
    ],
    ids=["script", "chinese", "crlf-empty-and-integers", "bytes"],
)
def test_commands_are_packed_as_redis_py_packs_them(args: tuple[str | int | bytes, ...]) -> None:
    """Byte for byte what redis-py would send."""
    assert pack(args) == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("arg", [True, 1.5, None])
def test_an_argument_the_store_never_sends_is_refused(arg: object) -> None:
    """A bool, float or None is not written in some form of its own: the call fails before anything is sent."""
    with pytest.raises(TypeError):
        pack(("SET", "k", arg))  # type: ignore[arg-type]


async def test_two_thousand_concurrent_calls_each_get_their_own_value(pipe: RedisPipe) -> None:
    """2,000 GETs of distinct keys in flight at once on one connection: each gets its key's value."""
    values = await fill(pipe, "many", 2000)
    await own_values(pipe, values)


async def test_concurrent_first_calls_share_one_connection(redis_server: RedisServer) -> None:
    """500 calls on a pipe not yet connected wait for one connect attempt: Redis sees one client of its name."""
    name = f"pipe-{random.randrange(1 << 30)}"
    pipe = RedisPipe.from_url(f"{redis_server.url}?client_name={name}", timeout=TIMEOUT)
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        assert await asyncio.gather(*(pipe.call("PING") for _ in range(500))) == ["PONG"] * 500
        assert [c["name"] for c in await client.client_list()].count(name) == 1
    finally:
        await pipe.close()
        await client.aclose()


async def test_an_error_reply_fails_only_its_own_call(pipe: RedisPipe) -> None:
    """Among concurrent calls, a wrong-type command and an unknown script fail alone; the rest get
    their own values, and the connection goes on serving."""
    values = await fill(pipe, "err", 200)
    keys = list(values)
    calls = [pipe.call("GET", k) for k in keys]
    calls.insert(50, pipe.call("HGET", keys[0], "field"))  # WRONGTYPE: the key holds a string
    calls.insert(120, pipe.call("EVALSHA", "0" * 40, 0))  # NOSCRIPT
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(outcomes[50], redis_errors.ResponseError)
    assert "WRONGTYPE" in str(outcomes[50])
    assert isinstance(outcomes[120], redis_errors.NoScriptError)
    del outcomes[120], outcomes[50]
    assert outcomes == [values[k] for k in keys]
    await own_values(pipe, values)


async def test_cancelled_calls_never_shift_the_replies_of_later_calls(pipe: RedisPipe) -> None:
    """Calls cancelled after their command was written leave their replies to be dropped: every call
    that was not cancelled, and every later call, gets its own value."""
    values = await fill(pipe, "cancel", 1000)
    keys = list(values)
    for _ in range(5):
        tasks = [asyncio.ensure_future(pipe.call("GET", k)) for k in keys]
        await asyncio.sleep(0)  # every command is written; no reply has been read yet
        cancelled = set(random.sample(range(len(keys)), 300))
        for i in cancelled:
            tasks[i].cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for i, (key, outcome) in enumerate(zip(keys, outcomes, strict=True)):
            if i in cancelled:
                assert isinstance(outcome, asyncio.CancelledError)
            else:
                assert outcome == values[key]
        await own_values(pipe, values)


async def test_calls_cancelled_while_redis_is_frozen_shift_nothing(own_redis: RedisServer) -> None:
    """Redis frozen with calls in flight, half of them cancelled, resumed within the deadline: the others
    get their own values, and so do the calls after them."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=3.0)
    try:
        values = await fill(pipe, "frozen", 400)
        keys = list(values)
        own_redis.pause()
        try:
            tasks = [asyncio.ensure_future(pipe.call("GET", k)) for k in keys]
            await asyncio.sleep(0.3)
            for task in tasks[::2]:
                task.cancel()
        finally:
            own_redis.resume()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[::2])
        assert outcomes[1::2] == [values[k] for k in keys[1::2]]
        await own_values(pipe, values)
    finally:
        await pipe.close()


async def test_stopped_redis_fails_pending_and_new_calls_in_time_and_a_restart_needs_no_step(
    own_redis: RedisServer,
) -> None:
    """Redis killed with calls in flight: they fail at once with a connection error, new calls fail within
    the deadline; restarted, the next calls succeed on a fresh connection."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=TIMEOUT)
    try:
        values = await fill(pipe, "stop", 100)
        own_redis.pause()  # so that the calls are still waiting when the server dies
        pending = [asyncio.ensure_future(timed(pipe.call("GET", k))) for k in values]
        await asyncio.sleep(0.1)
        assert own_redis.process is not None
        own_redis.process.kill()  # killed while frozen: it answers nothing more (stop() resumes it first)
        own_redis.stop()
        for outcome, elapsed in await asyncio.gather(*pending):
            assert isinstance(outcome, FAILED), outcome
            assert elapsed < TIMEOUT + SLACK
        for outcome, elapsed in await asyncio.gather(*(timed(pipe.call("GET", k)) for k in values)):
            assert isinstance(outcome, redis_errors.ConnectionError), outcome
            assert elapsed < TIMEOUT + SLACK
        own_redis.start()
        assert await pipe.call("PING") == "PONG"
        values = await fill(pipe, "restarted", 100)
        await own_values(pipe, values)
    finally:
        await pipe.close()


async def test_a_restart_between_calls_is_met_with_a_new_connection(own_redis: RedisServer) -> None:
    """Redis restarted while the connection is idle: the very next call succeeds (no stale connection)."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=TIMEOUT)
    try:
        assert await pipe.call("SET", "k", "1") == "OK"
        own_redis.stop()
        own_redis.start()
        await asyncio.sleep(0.05)  # the old connection's end is read meanwhile
        assert await pipe.call("GET", "k") == "1"  # the restarted server, read from its append-only file
    finally:
        await pipe.close()


async def test_frozen_redis_fails_calls_within_the_deadline_and_recovers_after_sigcont(
    own_redis: RedisServer,
) -> None:
    """SIGSTOP for 3 s: calls made at its start, and calls made later on a new connection, each fail
    within the deadline plus 0.2 s; after SIGCONT calls succeed with their own values."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=TIMEOUT)
    try:
        values = await fill(pipe, "pause", 200)
        own_redis.pause()
        frozen_at = time.monotonic()
        try:
            first = await asyncio.gather(*(timed(pipe.call("GET", k)) for k in values))
            second = await asyncio.gather(*(timed(pipe.call("GET", k)) for k in values))  # reconnects
            await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - frozen_at)))
        finally:
            own_redis.resume()
        for outcome, elapsed in first + second:
            assert isinstance(outcome, FAILED), outcome
            assert elapsed < TIMEOUT + SLACK
        assert any(isinstance(o, redis_errors.TimeoutError) for o, _ in first)
        await own_values(pipe, values)
    finally:
        await pipe.close()


async def test_the_url_selects_the_database_and_authenticates(own_redis: RedisServer) -> None:
    """A URL with a password and a database number: the pipe authenticates and writes to that db only."""
    admin = Redis.from_url(own_redis.url, decode_responses=True)
    await admin.config_set("requirepass", "s3cret")
    await admin.aclose()
    url = f"redis://:s3cret@127.0.0.1:{own_redis.port}/3"
    pipe = RedisPipe.from_url(url, timeout=TIMEOUT)
    checker = Redis.from_url(url, decode_responses=True)
    try:
        assert await pipe.call("SET", "in-db-3", "yes") == "OK"
        assert await checker.get("in-db-3") == "yes"
        await checker.select(0)
        assert await checker.get("in-db-3") is None
    finally:
        await pipe.close()
        await checker.aclose()
    wrong = RedisPipe.from_url(f"redis://:wrong@127.0.0.1:{own_redis.port}/3", timeout=TIMEOUT)
    try:
        with pytest.raises(redis_errors.RedisError):
            await wrong.call("GET", "in-db-3")
    finally:
        await wrong.close()


async def test_a_unix_socket_url_works(tmp_path: Path) -> None:
    """unix:// with a db query: the same pipe over a unix socket."""
    socket_path = tmp_path / "redis.sock"
    server = RedisServer(tmp_path, extra_args=("--unixsocket", str(socket_path), "--unixsocketperm", "700"))
    server.start()
    try:
        pipe = RedisPipe.from_url(f"unix://{socket_path}?db=2", timeout=TIMEOUT)
        try:
            assert await pipe.call("SET", "k", "v") == "OK"
            assert await pipe.call("GET", "k") == "v"
        finally:
            await pipe.close()
        client = Redis.from_url(server.url, decode_responses=True)
        assert await client.get("k") is None  # db 0 over TCP
        await client.aclose()
    finally:
        server.stop()


async def test_close_fails_waiting_calls_and_refuses_later_ones(own_redis: RedisServer) -> None:
    """close() with calls waiting on a frozen Redis fails them at once; a call after close fails too."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=TIMEOUT)
    assert await pipe.call("PING") == "PONG"
    own_redis.pause()
    try:
        waiting = [asyncio.ensure_future(pipe.call("PING")) for _ in range(10)]
        await asyncio.sleep(0.05)
        await pipe.close()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        own_redis.resume()
    assert all(isinstance(o, redis_errors.ConnectionError) for o in outcomes), outcomes
    with pytest.raises(redis_errors.ConnectionError):
        await pipe.call("PING")


async def test_close_during_a_connect_fails_its_callers_as_a_lost_connection(own_redis: RedisServer) -> None:
    """close() while callers wait for a connect (to a frozen Redis): they fail with ConnectionError, not
    with a cancellation they did not ask for."""
    pipe = RedisPipe.from_url(own_redis.url, timeout=TIMEOUT)
    own_redis.pause()
    try:
        waiting = [asyncio.ensure_future(pipe.call("PING")) for _ in range(10)]
        await asyncio.sleep(0.1)  # connected at the TCP level; the handshake waits for the frozen server
        await pipe.close()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        own_redis.resume()
    assert all(isinstance(o, redis_errors.ConnectionError) for o in outcomes), outcomes
