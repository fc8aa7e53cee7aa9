"""Bad requests: whatever a client sends that is not a well-formed request is answered with a 4xx
problem+json naming the problem — never a 500, never a traceback.

Requests aiohttp's HTTP parser refuses before any handler runs (a header line past 8190 bytes, too
many headers, a request line too long, a broken Content-Length, TLS bytes on the plain port) never
reach the problem middleware: the servers answer them through verifier.web.server's runner, which turns
aiohttp's own answer into problem+json (431, 414 or 400) and closes the connection. Those are tested on
a real TCP server started through that runner, and once on `verifier serve` itself. SECURITY.md says so too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web

from tests.helpers import PROBLEM, Client, assert_problem
from tests.redis_server import free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.paths import schema_dir
from verifier.service.settings import Settings
from verifier.web.server import ProblemRunner

NOTARY = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"
MAX_BODY = Settings().max_body_bytes
TOKEN_FIELD_MAX = 8192  # the token field's maxLength in schemas/openapi.json


async def _post_raw(
    client: Client, scene: Scene, data: bytes, content_type: str | None = "application/json", path: str = "/v1/scans"
) -> ClientResponse:
    headers = {**scene.auth(NOTARY)}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.post(path, data=data, headers=headers)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"{", "not valid JSON"),
        (b'{"token": "x", "scenario": }', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"{'token': 'x'}", "not valid JSON"),
        (b'{"token": "x"} trailing', "not valid JSON"),
        (b'{"token": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[" * 8000 + b"]" * 8000, "JSON"),  # past the recursion limit, or read and not an object
    ],
    ids=["unclosed", "missing-value", "empty", "single-quotes", "trailing-text", "5000-digit-number", "deep-nesting"],
)
async def test_invalid_json_is_a_400_naming_it(client: Client, scene: Scene, raw: bytes, named: str) -> None:
    """A body that is not JSON is a 400 that says so."""
    await assert_problem(await _post_raw(client, scene, raw), 400, named)


@pytest.mark.parametrize(
    "raw",
    [b'{"token": "\xff\xfe", "scenario": "x"}', b'{"token": "\xc3\x28"}', '{"token": "张三"}'.encode("gb18030")],
    ids=["ff-fe", "broken-two-byte-sequence", "gb18030-text"],
)
async def test_invalid_utf8_is_a_400_naming_it(client: Client, scene: Scene, raw: bytes) -> None:
    """A body that is not UTF-8 is a 400 that says so."""
    await assert_problem(await _post_raw(client, scene, raw), 400, "UTF-8")


@pytest.mark.parametrize("charset", ["latin-1", "gb2312", "bogus-charset", "utf-7"])
async def test_a_charset_other_than_utf8_is_a_415_naming_it(client: Client, scene: Scene, charset: str) -> None:
    """Content-Type application/json with any charset but UTF-8 is a 415 naming the charset."""
    raw = json.dumps({"token": "x", "scenario": SCENARIO}).encode()
    await assert_problem(await _post_raw(client, scene, raw, f"application/json; charset={charset}"), 415, "charset")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jwt", None],
    ids=["text", "form", "multipart", "jwt", "none"],
)
async def test_a_body_that_is_not_json_by_type_is_a_415(client: Client, scene: Scene, content_type: str | None) -> None:
    """Any Content-Type but application/json (or none) is a 415 naming what was sent."""
    raw = json.dumps({"token": "x", "scenario": SCENARIO}).encode()
    await assert_problem(await _post_raw(client, scene, raw, content_type), 415, "Content-Type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": SCENARIO}, "token"),
        ({"token": "x"}, "scenario"),
        ({"token": "", "scenario": SCENARIO}, "token"),
        ({"token": None, "scenario": SCENARIO}, "token"),
        ({"token": 42, "scenario": SCENARIO}, "token"),
        ({"token": ["a.b.c"], "scenario": SCENARIO}, "token"),
        ({"token": {"jws": "a.b.c"}, "scenario": SCENARIO}, "token"),
        ({"token": True, "scenario": SCENARIO}, "token"),
        ({"token": "x", "scenario": 7}, "scenario"),
        ({"token": "x", "scenario": SCENARIO, "serial_no": 12}, "serial_no"),
        ({"token": "x", "scenario": SCENARIO, "operator": ["clerk"]}, "operator"),
        ({"token": "x", "scenario": SCENARIO, "serial_no": "S" * 65}, "serial_no"),
        ({"token": "x", "scenario": "s" * 65}, "scenario"),
    ],
    ids=[
        "token-missing", "scenario-missing", "token-empty", "token-null", "token-number", "token-list",
        "token-object", "token-boolean", "scenario-number", "serial-number-number", "operator-list",
        "serial-number-too-long", "scenario-too-long",
    ],
)  # fmt: skip
async def test_a_missing_or_non_string_field_is_a_400_naming_the_field(
    client: Client, scene: Scene, body: dict[str, Any], field: str
) -> None:
    """A required field missing, or any field of the wrong type or length, is a 400 naming the field."""
    problem = await assert_problem(await _post_raw(client, scene, json.dumps(body).encode()), 400, field)
    assert problem["field"] == field


@pytest.mark.parametrize("raw", [b"[]", b'"a.b.c"', b"null", b"42", b"true"], ids=lambda r: r.decode())
async def test_a_body_that_is_not_an_object_is_a_400(client: Client, scene: Scene, raw: bytes) -> None:
    """A JSON body that is not an object is a 400 that says it must be one."""
    await assert_problem(await _post_raw(client, scene, raw), 400, "JSON object")


@pytest.mark.parametrize("field", ["token", "scenario", "serial_no", "operator"])
async def test_a_lone_surrogate_escape_in_a_field_is_a_400(client: Client, scene: Scene, field: str) -> None:
    """A field whose JSON escapes a lone surrogate (\\ud800), which no UTF-8 text holds, is a 400 naming the field."""
    body = {"token": "a.b.c", "scenario": SCENARIO, field: "x\ud800"}
    raw = json.dumps(body, ensure_ascii=True).encode()
    problem = await assert_problem(await _post_raw(client, scene, raw), 400, field, "surrogate")
    assert problem["field"] == field


async def test_a_lone_surrogate_in_a_revocation_is_a_400(client: Client, scene: Scene) -> None:
    """A revocation naming a licence number with a lone surrogate escape is a 400, not a 500."""
    raw = json.dumps({"type": "driving-licence", "province": "SC", "licence_no": "\udfff"}).encode()
    response = await client.post(
        "/v1/revocations", data=raw, headers={**scene.admin(), "Content-Type": "application/json"}
    )
    await assert_problem(response, 400, "licence_no")


async def test_nan_and_infinity_in_fields_are_a_400(client: Client, scene: Scene) -> None:
    """NaN and Infinity (which Python's JSON reads) in a field are a 400 for that field, not a crash."""
    for literal, field in (("NaN", "token"), ("Infinity", "serial_no"), ("-Infinity", "operator")):
        values = {"token": '"a.b.c"', "scenario": f'"{SCENARIO}"', field: literal}
        raw = ("{" + ",".join(f'"{k}":{v}' for k, v in values.items()) + "}").encode()
        await assert_problem(await _post_raw(client, scene, raw), 400, field)


async def test_an_unknown_scenario_is_a_422_listing_the_counters_own(client: Client, scene: Scene) -> None:
    """An unknown scenario is a 422 naming it and listing what the counter handles."""
    raw = json.dumps({"token": "a.b.c", "scenario": "no-such-business"}).encode()
    problem = await assert_problem(await _post_raw(client, scene, raw), 422, "no-such-business")
    assert SCENARIO in problem["allowed"]


async def test_an_oversized_body_is_a_413(client: Client, scene: Scene) -> None:
    """A body past the size limit is a 413 problem, whether its length is declared or chunked."""
    raw = json.dumps({"token": "A" * (MAX_BODY + 1), "scenario": SCENARIO}).encode()
    await assert_problem(await _post_raw(client, scene, raw), 413)

    async def chunks() -> Any:
        for _ in range(4):
            yield b"A" * MAX_BODY

    response = await client.post(
        "/v1/scans", data=chunks(), headers={**scene.auth(NOTARY), "Content-Type": "application/json"}
    )
    await assert_problem(response, 413)


async def test_a_token_up_to_the_documented_maximum_is_decided_and_one_past_it_is_a_400(
    client: Client, scene: Scene
) -> None:
    """A token field of 8192 characters (the document's maxLength) is decided as too large; 8193 is a 400."""
    raw = json.dumps({"token": "A" * TOKEN_FIELD_MAX, "scenario": SCENARIO}).encode()
    response = await _post_raw(client, scene, raw)
    assert response.status == 200
    assert [r["code"] for r in (await response.json())["reasons"]] == ["TOKEN_TOO_LARGE"]
    raw = json.dumps({"token": "A" * (TOKEN_FIELD_MAX + 1), "scenario": SCENARIO}).encode()
    await assert_problem(await _post_raw(client, scene, raw), 400, "token", str(TOKEN_FIELD_MAX))


def test_the_documented_token_maximum_fits_the_body_limit() -> None:
    """The OpenAPI document's token maxLength is the service's, and a request holding it fits the body limit."""
    document = json.loads((schema_dir() / "openapi.json").read_text(encoding="utf-8"))
    assert document["components"]["schemas"]["ScanRequest"]["properties"]["token"]["maxLength"] == TOKEN_FIELD_MAX
    assert TOKEN_FIELD_MAX + 4 * 64 + 200 < MAX_BODY


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer wrong-key", "Bearer " + "k" * 7000],
    ids=["empty", "scheme-only", "scheme-and-space", "basic", "wrong-key", "7-kb-key"],
)
async def test_a_missing_or_wrong_key_is_a_401_even_when_huge(client: Client, authorization: str) -> None:
    """No key, a wrong scheme or key, or a 7 KB key is a 401 problem asking for a bearer key."""
    raw = json.dumps({"token": "a.b.c", "scenario": SCENARIO}).encode()
    response = await client.post(
        "/v1/scans", data=raw, headers={"Authorization": authorization, "Content-Type": "application/json"}
    )
    await assert_problem(response, 401, "API key")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "driving-licence", "province": "SC", "licence_no": "1", "restore": "yes"}, "restore"),
        ({"type": "driving-licence", "province": "SC"}, "licence_no"),
        ({"type": 5, "province": "SC", "licence_no": "1"}, "type"),
        ({"type": "driving-licence", "province": "SC", "licence_no": "1", "reason": "r" * 201}, "reason"),
    ],
    ids=["restore-not-boolean", "licence-number-missing", "type-not-string", "reason-too-long"],
)
async def test_a_bad_revocation_is_a_400_naming_the_field(
    client: Client, scene: Scene, body: dict[str, Any], field: str
) -> None:
    """A revocation with a field missing or of the wrong type is a 400 naming the field."""
    response = await client.post("/v1/revocations", json=body, headers=scene.admin())
    problem = await assert_problem(response, 400, field)
    assert problem["field"] == field


# --- requests aiohttp's parser refuses, on a real TCP server -------------------------------------

HEADER_LINE_20_KB = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"


@pytest.fixture
async def server(scene: Scene) -> AsyncIterator[int]:
    """The verifier on a real loopback TCP port, served as `verifier serve` serves it; yields the port."""
    runner = ProblemRunner(scene.app(store=MemoryStore()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()


async def _exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes and read until the server closes the connection (bounded in time)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _refusal(answer: bytes, status: int, *named: str) -> dict[str, Any]:
    """Check a raw answer to a refused request: the status, a problem+json body naming ``named`` in Chinese
    and English, no traceback, and the connection closed (the caller read it to its end)."""
    head, _, raw = answer.partition(b"\r\n\r\n")
    assert _status(answer) == status, answer[:300]
    headers = head.decode("latin-1").lower()
    assert f"content-type: {PROBLEM}" in headers
    text = raw.decode("utf-8")
    assert "Traceback" not in text
    assert 'File "' not in text
    body: dict[str, Any] = json.loads(text)
    assert body["status"] == status
    assert body["type"].startswith("https://cy-licence.example/problems/")
    for member in ("title", "detail"):
        assert re.search("[\u4e00-\u9fff]", body[member]), f"no Chinese in {member}: {body}"
        assert re.search("[A-Za-z]{3}", body[member]), f"no English in {member}: {body}"
    for word in named:
        assert word in body["detail"], body["detail"]
    return body


@pytest.mark.parametrize(
    ("request_bytes", "status", "named"),
    [
        (HEADER_LINE_20_KB, 431, "header line"),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-H%d: a\r\n" % i for i in range(300)) + b"\r\n",
         431, "too many header"),
        (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "request line"),
        (b"POST /v1/scans HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"),
        (b"POST /v1/scans HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400, "Transfer-Encoding"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400, "TLS"),
    ],
    ids=["header-line-20-kb", "300-headers", "request-line-20-kb", "bad-content-length", "length-and-chunked", "tls"],
)  # fmt: skip
async def test_what_the_http_parser_refuses_is_a_problem_naming_it(
    server: int, request_bytes: bytes, status: int, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A request aiohttp's parser refuses is a problem+json with its own status (431 for header size or
    count, 414 for the request line, 400 otherwise) naming the part at fault, no traceback, the connection
    closed; and the server goes on serving."""
    caplog.set_level("CRITICAL", logger="aiohttp.server")  # aiohttp logs each refusal with its stack
    _refusal(await _exchange(server, request_bytes), status, named)
    healthy = await _exchange(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert _status(healthy) == 200


async def test_an_unexpected_error_outside_the_middleware_is_a_problem_without_a_traceback() -> None:
    """An exception no middleware catches reaches aiohttp's handle_error: through the runner it is a 500
    problem+json, without the traceback aiohttp would print in debug mode, and the connection is closed."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = web.Application()  # in debug mode, as the loop is here, aiohttp would answer with the traceback
    app.router.add_get("/broken", broken)
    runner = ProblemRunner(app, access_log=None)
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        request = b"GET /broken HTTP/1.1\r\nHost: t\r\nAccept: text/html\r\n\r\n"
        body = _refusal(await _exchange(int(runner.addresses[0][1]), request), 500, "internal error")
        assert "boom" not in body["detail"]
    finally:
        await runner.cleanup()
        loop.set_debug(False)


async def test_verifier_serve_answers_a_20_kb_header_line_with_a_431_problem(tmp_path: Path) -> None:
    """`verifier serve` itself (its real runner, in its own process) answers a 20 KB header line with
    a 431 problem+json and closes the connection; SIGTERM then stops it cleanly."""
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any request
        [sys.executable, "-m", "verifier", "serve", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "VERIFIER_STATE_DIR": str(tmp_path / "state")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = await _exchange(port, HEADER_LINE_20_KB)
                break
            except OSError:  # not listening yet
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("verifier serve did not start") from None
                await asyncio.sleep(0.1)
    finally:
        process.terminate()
        output, _ = await asyncio.to_thread(process.communicate, timeout=20)
    _refusal(answer, 431, "header line", "8190")
    assert process.returncode == 0, output.decode(errors="replace")


async def test_large_headers_within_the_parsers_limits_reach_the_problem_middleware(server: int) -> None:
    """Headers just within aiohttp's limits (a 7 KB Authorization header) get the service's own 401 problem+json."""
    request = (
        b"POST /v1/scans HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + b"k" * 7000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    answer = await _exchange(server, request)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert _status(answer) == 401
    assert PROBLEM.encode() in head
    assert json.loads(body)["status"] == 401
