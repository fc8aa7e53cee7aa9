"""Sign-in hygiene and the headers of every answer: refused keys counted in /metrics and logged at a
bounded rate without key material, two Authorization headers refused, answers with licence data kept out
of caches and never sniffed, and a Server header naming no version — on the routed app, on the direct
scan route of `verifier serve`, and on the answers its runner gives itself."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry, Counter

from tests.helpers import Client, assert_problem
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.web.metrics import metric_total
from verifier.web.server import ProblemRunner
from verifier.web.signins import SignInLog

NOTARY = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"
WRONG_KEY = "cq-notary-zhixin-01.thisisnotthekey-Zq81"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event": "sign_in_refused"')
    ]


async def test_refused_keys_are_counted_by_reason_and_logged_without_the_key(
    client: Client, scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    """Wrong, missing and misplaced keys are each counted in /metrics under their reason; the log says
    how many and why, and never holds any part of a key."""
    caplog.set_level(logging.WARNING, logger="verifier")
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    for _ in range(5):
        response = await client.post("/v1/scans", json=body, headers={"Authorization": f"Bearer {WRONG_KEY}"})
        await assert_problem(response, 401)
    await assert_problem(await client.post("/v1/scans", json=body), 401)
    await assert_problem(await client.post("/v1/scans", json=body, headers={"Authorization": "Basic eDp5"}), 401)
    await assert_problem(await client.post("/v1/scans", json=body, headers=scene.admin()), 401)
    await assert_problem(await client.get("/v1/stats", headers=scene.auth(NOTARY)), 403)
    text = await (await client.get("/metrics")).text()
    counted = {
        reason: metric_total(text, "verifier_sign_in_failures_total", reason=reason)
        for reason in ("unknown", "missing", "not_counter", "not_admin", "duplicate")
    }
    assert counted == {"unknown": 5, "missing": 2, "not_counter": 1, "not_admin": 1, "duplicate": 0}
    [first] = _refusals(caplog)  # the first at once; the rest are held for the next line
    assert (first["count"], first["by_reason"], first["last_peer"]) == (1, {"unknown": 1}, "127.0.0.1")
    assert "密钥" in first["message"]
    logged = caplog.text
    for secret in ("thisisnotthekey", "eDp5", scene.admin()["Authorization"].split()[1][-12:]):
        assert secret not in logged


async def test_refusals_are_logged_at_most_once_an_interval_and_none_is_lost() -> None:
    """A burst of refusals is one line at once and one line per interval after it while it goes on, which
    adds up every refusal held; a quiet interval ends it, and the next refusal is logged at once again."""
    failures = Counter("refused", "test", ("reason",), registry=CollectorRegistry())
    lines: list[dict[str, Any]] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(json.loads(record.getMessage()))  # type: ignore[method-assign]
    logger = logging.getLogger("verifier")
    logger.addHandler(handler)
    try:
        log = SignInLog(failures, interval=0.3)
        for _ in range(1000):
            log.refused("unknown", "192.0.2.7")
        log.refused("missing", "192.0.2.8")
        assert [line["count"] for line in lines] == [1]
        await asyncio.sleep(0.45)
        assert [line["count"] for line in lines] == [1, 1000]
        assert lines[1]["by_reason"] == {"missing": 1, "unknown": 999}
        assert lines[1]["last_peer"] == "192.0.2.8"
        await asyncio.sleep(0.3)  # a quiet interval
        log.refused("duplicate", None)
        assert [line["count"] for line in lines] == [1, 1000, 1]
        log.refused("duplicate", None)
        log.close()  # held refusals are written when the service stops
        assert [line["count"] for line in lines] == [1, 1000, 1, 1]
    finally:
        logger.removeHandler(handler)
    assert failures.labels("unknown")._value.get() == 1000


async def test_two_authorization_headers_are_a_400_even_if_one_is_right(client: Client, scene: Scene) -> None:
    """Two Authorization headers (which of them a proxy or a framework reads differs) are refused with 400
    and counted, whichever of them is the right key."""
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    right = scene.auth(NOTARY)["Authorization"]
    for pair in ((right, f"Bearer {WRONG_KEY}"), (f"Bearer {WRONG_KEY}", right), (right, right)):
        headers = CIMultiDict([("Authorization", pair[0]), ("Authorization", pair[1])])
        response = await client.post("/v1/scans", json=body, headers=headers)
        await assert_problem(response, 400, "Authorization")
    text = await (await client.get("/metrics")).text()
    assert metric_total(text, "verifier_sign_in_failures_total", reason="duplicate") == 3
    assert metric_total(text, "verifier_scans_total") == 0


def _assert_hardened(headers: Any, *, cache: str = "no-store") -> None:
    """No version in Server; nosniff; the expected Cache-Control."""
    assert headers["Server"] == "cy-licence-verifier"
    assert not re.search(r"\d|aiohttp|Python", headers["Server"])
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == cache


async def test_api_answers_are_kept_out_of_caches_and_name_no_version(client: Client, scene: Scene) -> None:
    """Decisions, problems, statistics, the signed-in counter and the documents carry Cache-Control:
    no-store, nosniff and a Server header without a version; the pages keep their own caching."""
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    decided = await client.post("/v1/scans", json=body, headers=scene.auth(NOTARY))
    scan_id = (await decided.json())["scan_id"]
    answers = [
        decided,
        await client.get(f"/v1/scans/{scan_id}", headers=scene.auth(NOTARY)),
        await client.post("/v1/scans", json=body),
        await client.get("/v1/stats", headers=scene.admin()),
        await client.get("/v1/counters/me", headers=scene.auth(NOTARY)),
        await client.get("/v1/catalogue"),
        await client.get("/nothing-here"),
        await client.get("/metrics"),
    ]
    assert [a.status for a in answers] == [200, 200, 401, 200, 200, 200, 404, 200]
    for answer in answers:
        _assert_hardened(answer.headers)
    _assert_hardened((await client.get("/console")).headers, cache="no-cache")


@pytest.fixture
async def served(scene: Scene) -> AsyncIterator[int]:
    """The verifier as `verifier serve` serves it; its port."""
    runner = ProblemRunner(scene.app(store=MemoryStore()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes and read until the server closes; status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


async def test_the_direct_scan_route_and_the_runners_own_answers_are_hardened_too(served: int, scene: Scene) -> None:
    """On `verifier serve`, the scan's direct route (decisions and problems) and the answers its runner gives
    before any handler (a 431) carry the same headers; two Authorization headers are a 400 there too."""
    token = scene.driving_licence("SC")
    body = json.dumps({"token": token, "scenario": SCENARIO}).encode()
    auth = scene.auth(NOTARY)["Authorization"].encode()

    def scan(*authorization: bytes) -> bytes:
        lines = b"".join(b"Authorization: " + a + b"\r\n" for a in authorization)
        return (
            b"POST /v1/scans HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + lines
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )

    status, headers, answer = await _exchange(served, scan(auth))
    assert (status, json.loads(answer)["decision"]) == (200, "accepted")
    _assert_hardened(headers)
    status, headers, _ = await _exchange(served, scan(b"Bearer " + WRONG_KEY.encode()))
    assert status == 401
    _assert_hardened(headers)
    status, headers, answer = await _exchange(served, scan(auth, auth))
    assert (status, json.loads(answer)["status"]) == (400, 400)
    _assert_hardened(headers)
    status, headers, _ = await _exchange(
        served, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    )
    assert status == 431
    _assert_hardened(headers)
