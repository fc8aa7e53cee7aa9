"""Helpers the test modules share: the types of an aiohttp test client and of the fixtures that make
test clients and servers, and the check of an RFC 9457 problem answer."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from typing import Any, TypeAlias

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from verifier.web.problems import is_bilingual

PROBLEM = "application/problem+json"

Client: TypeAlias = TestClient[web.Request, web.Application]
"""A client of an app under test, as the ``aiohttp_client`` fixture returns it."""

ClientFactory: TypeAlias = AiohttpClient
"""The type of pytest-aiohttp's ``aiohttp_client`` fixture: ``await aiohttp_client(app)`` is a :data:`Client`."""

ServerFactory: TypeAlias = AiohttpServer
"""The type of pytest-aiohttp's ``aiohttp_server`` fixture: ``await aiohttp_server(app)`` is a running test server."""


async def assert_problem(response: ClientResponse, status: int, *named: str) -> dict[str, Any]:
    """Check a problem answer — its status, its content type, no traceback in it, the members every problem
    has, its ``status`` member, its title and detail in Chinese and English, and that its detail names each
    of ``named`` — and return its body."""
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == PROBLEM
    assert "Traceback" not in text
    body: dict[str, Any] = json.loads(text)
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert is_bilingual(body["title"]), body["title"]
    assert is_bilingual(body["detail"]), body["detail"]
    for word in named:
        assert word in body["detail"], body["detail"]
    return body


def wait_ready(port: int, *, process: subprocess.Popen[str] | None = None, timeout: float = 30) -> None:
    """Wait until the service on ``port`` answers ``GET /readyz`` with 200; fail early if ``process``
    (the service, when the test started it) has exited."""
    deadline = time.monotonic() + timeout
    while (process is None or process.poll() is None) and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    exited = "" if process is None else f" (exit code {process.poll()})"
    raise AssertionError(f"the service on port {port} did not become ready{exited}")
