"""Connection hygiene on real sockets, served as `verifier serve` serves (verifier.web.server's runner): a
request head late by ``header_timeout`` closes its connection (slowloris), an idle kept-alive connection
is closed after ``keepalive_timeout``, and connections beyond ``max_connections`` are answered 503.

Each timing test checks that the server closes the connection (the read ends) within a generous bound,
and where it matters that it did not close it before the setting said."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.helpers import PROBLEM
from tests.redis_server import free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.service.settings import Settings
from verifier.web.metrics import metric_total
from verifier.web.server import ProblemRunner

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
HALF_A_HEAD = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "
CLOSED_WITHIN = 10.0  # seconds: far past every timeout set here, so a slow machine never fails a test


class Connection:
    """One raw TCP connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        """Write ``data`` now."""
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[int, dict[str, str], bytes]:
        """Read one response (status, headers in lower case, body by its Content-Length)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), CLOSED_WITHIN)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), CLOSED_WITHIN)
        return int(status_line.split(" ")[1]), headers, body

    async def closed_by_server(self) -> float:
        """Wait (bounded) until the server closes the connection with nothing more said; seconds waited."""
        started = time.monotonic()
        rest = await asyncio.wait_for(self.reader.read(), CLOSED_WITHIN)
        assert rest == b"", rest[:200]
        return time.monotonic() - started

    async def close(self) -> None:
        """Close from this side."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class Served:
    """Verifier instances on loopback ports, served as `verifier serve` serves them, and the connections
    a test opened to them (closed at its end)."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.runners: list[web.AppRunner] = []
        self.connections: list[Connection] = []

    async def start(self, settings: Settings) -> int:
        """One instance with ``settings``; its port."""
        runner = ProblemRunner(self.scene.app(settings, store=MemoryStore()), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        return int(runner.addresses[0][1])

    async def connect(self, port: int) -> Connection:
        """A new connection to ``port``."""
        connection = Connection(*await asyncio.open_connection("127.0.0.1", port))
        self.connections.append(connection)
        return connection

    async def dropped(self, port: int, reason: str) -> float:
        """The server's count of connections dropped for ``reason``, read over a connection of its own."""
        connection = await self.connect(port)
        await connection.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, body = await connection.answer()
        assert status == 200
        return metric_total(body.decode(), "verifier_connections_dropped_total", reason=reason)


@pytest.fixture
async def served(scene: Scene) -> AsyncIterator[Served]:
    """Start instances with given settings; everything is closed and stopped at the end."""
    served = Served(scene)
    yield served
    for connection in served.connections:
        connection.writer.close()
        with contextlib.suppress(ConnectionError):
            await connection.writer.wait_closed()
    for runner in served.runners:
        await runner.cleanup()


async def test_half_a_request_head_is_closed_after_the_header_timeout(
    served: Served,
) -> None:
    """A client that sends half a head and waits is cut off once header_timeout has passed, not before,
    though its keep-alive bound is a minute; the drop is counted."""
    port = await served.start(Settings(header_timeout=1.0, keepalive_timeout=60.0))
    connection = await served.connect(port)
    await connection.send(HALF_A_HEAD)
    assert await connection.closed_by_server() >= 0.9
    assert await served.dropped(port, "header_timeout") == 1


async def test_a_head_trickled_byte_by_byte_is_closed_at_its_deadline(
    served: Served,
) -> None:
    """Slowloris: a byte of a header every 0.2 s never earns more time; the connection is closed about a
    second after its head began, long before the 50 bytes are sent."""
    port = await served.start(Settings(header_timeout=1.0, keepalive_timeout=60.0))
    connection = await served.connect(port)
    closed = asyncio.create_task(connection.closed_by_server())
    sent = 0
    for byte in HALF_A_HEAD + b"a" * 50:
        if closed.done():
            break
        try:
            await connection.send(bytes([byte]))
        except ConnectionError:  # the server closed it between two bytes
            break
        sent += 1
        await asyncio.sleep(0.2)
    await closed
    assert sent < len(HALF_A_HEAD)


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    served: Served,
) -> None:
    """A connection opened and left silent (1,100 of them once used up a 1,024-file limit) is closed
    after header_timeout."""
    port = await served.start(Settings(header_timeout=1.0, keepalive_timeout=60.0))
    connection = await served.connect(port)
    assert await connection.closed_by_server() >= 0.9


async def test_an_idle_kept_alive_connection_lives_until_the_keepalive_timeout(
    served: Served,
) -> None:
    """Between requests a kept-alive connection is bounded by keepalive_timeout, not header_timeout: idle
    past the header timeout it still serves; idle past the keep-alive timeout it is closed."""
    port = await served.start(Settings(header_timeout=0.5, keepalive_timeout=2.0))
    connection = await served.connect(port)
    await connection.send(HEALTHZ)
    assert (await connection.answer())[0] == 200
    await asyncio.sleep(1.0)
    await connection.send(HEALTHZ)
    assert (await connection.answer())[0] == 200
    assert await connection.closed_by_server() >= 1.5
    assert await served.dropped(port, "header_timeout") == 0


async def test_half_a_head_on_a_kept_alive_connection_is_closed_after_the_header_timeout(
    served: Served,
) -> None:
    """After a first request, the next head's clock starts at its first byte: half a head is cut off after
    header_timeout although the connection might idle for a minute."""
    port = await served.start(Settings(header_timeout=1.0, keepalive_timeout=60.0))
    connection = await served.connect(port)
    await connection.send(HEALTHZ)
    assert (await connection.answer())[0] == 200
    await connection.send(HALF_A_HEAD)
    assert await connection.closed_by_server() >= 0.9


async def test_connections_beyond_the_cap_are_answered_503_until_one_closes(
    served: Served,
) -> None:
    """With max_connections open, a new connection's request gets a 503 problem+json (in Chinese and
    English, with Retry-After) and is closed; once a connection closes, new ones are served again."""
    port = await served.start(Settings(max_connections=3, header_timeout=30.0))
    held = [await served.connect(port) for _ in range(3)]
    for connection in held:
        await connection.send(HEALTHZ)
        assert (await connection.answer())[0] == 200
    extra = await served.connect(port)
    await extra.send(HEALTHZ)
    status, headers, body = await extra.answer()
    assert (status, headers["content-type"], headers["retry-after"]) == (503, f"{PROBLEM}; charset=utf-8", "2")
    problem: dict[str, Any] = json.loads(body)
    assert "3" in problem["detail"]
    assert "连接" in problem["detail"]
    assert "connections" in problem["detail"]
    await extra.closed_by_server()
    await held[0].send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    metrics = (await held[0].answer())[2].decode()
    assert metric_total(metrics, "verifier_connections_dropped_total", reason="over_capacity") == 1
    await held.pop().close()
    deadline = time.monotonic() + CLOSED_WITHIN
    while True:  # the server notices the close when it next reads from that socket
        again = await served.connect(port)
        await again.send(HEALTHZ)
        status = (await again.answer())[0]
        await again.close()
        if status == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert status == 200


def test_verifier_serve_raises_its_open_file_limit_and_says_when_it_is_too_low(tmp_path: Path) -> None:
    """Started with a soft limit of 256 open files and a hard one of 512, `verifier serve` raises the soft
    limit to 512, and warns (in Chinese and English) that 512 is below the default cap of 800 connections."""
    port = free_port()
    command = f"ulimit -Sn 256 && ulimit -Hn 512 && exec {sys.executable} -m verifier serve --port {port}"
    process = subprocess.Popen(
        ["/bin/sh", "-c", command],
        env={**os.environ, "VERIFIER_STATE_DIR": str(tmp_path / "state")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:  # listening (ready needs a trust list)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == ["512", "512"], line
    assert "ulimit -n" in output
    assert "可打开文件数" in output
