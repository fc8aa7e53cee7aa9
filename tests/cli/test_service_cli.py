"""The service's commands as an operator runs them: `verifier serve` (one and two worker
processes), `verifier revoke` through the HTTP endpoint and straight into Redis, `verifier admin-key`."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServerFactory, wait_ready
from tests.redis_server import RedisServer, free_port
from tests.scenes import Scene
from verifier.cli.main import main
from verifier.service.settings import Settings


def _post(url: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test server
        result: dict[str, Any] = json.loads(response.read())
        return result


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    """An environment with a fresh state folder, as a new operator has."""
    return {**os.environ, "VERIFIER_STATE_DIR": str(tmp_path / "state")}


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "verifier", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.redis)])
def test_serve_decides_scans_from_a_fresh_state(
    state: dict[str, str], request: pytest.FixtureRequest, workers: int
) -> None:
    """`verifier serve` (one worker, or two sharing a port on Redis) accepts a token once, then REPLAYED; each
    scan's JSON line is on standard output when it stops (lines are written in batches: none is lost)."""
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    store: list[str] = []  # the key commands write where the service reads: Redis when it runs on Redis
    if workers > 1:  # only the two workers need the session's redis-server
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        store = ["--redis-url", redis_server.url]
        args += store
    # The issuer publishes its keys first: each worker answers /readyz for itself, so one ready worker would
    # not say the other has read them (tests/cli/test_quick_start.py starts a service before its issuer).
    mint = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    token = _cli(state, *mint)
    process = subprocess.Popen(
        [sys.executable, "-m", "verifier", *args],
        env=state,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_ready(port)
        counters = ("cq-notary-zhixin-01", "cq-notary-zhixin-02")
        keys = [_cli(state, "counters", "key", c, "--replace", *store) for c in counters]
        url = f"http://127.0.0.1:{port}/v1/scans"
        body = {"token": token, "scenario": "notary-driving-licence"}
        first = _post(url, body, keys[0])
        second = _post(url, body, keys[1])
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert first["decision"] == "accepted", first
    assert [r["code"] for r in second["reasons"]] == ["REPLAYED"]
    if workers == 1:
        assert "embedded in-process store" in output
    assert output.count("verifier listening") == workers
    logged = [json.loads(line) for line in output.splitlines() if line.startswith('{"event":"scan"')]
    assert sorted((e["scan_id"], e["decision"]) for e in logged) == sorted(
        [(first["scan_id"], "accepted"), (second["scan_id"], "rejected")]
    )


@pytest.mark.parametrize("command", [["serve"], ["issuer", "serve"]], ids=" ".join)
def test_listening_is_said_once_the_port_is_bound(state: dict[str, str], command: list[str]) -> None:
    """`serve` and `issuer serve` say "listening" only once the port takes connections: a connection made the
    moment the line appears, without a retry, is accepted."""
    port = free_port()
    argv = [sys.executable, "-m", "verifier", *command, "--port", str(port)]
    with subprocess.Popen(argv, env=state, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        try:
            assert process.stdout is not None
            said = [process.stdout.readline()]
            while said[-1] and "listening" not in said[-1]:  # up to the listening line (or the end of the output)
                said.append(process.stdout.readline())
            assert "listening" in said[-1], said
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        finally:
            process.terminate()


def test_serve_refuses_workers_without_redis(state: dict[str, str]) -> None:
    """Several workers on the embedded store would not share one-time use: refused with exit 2."""
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--workers", "2"],
        env=state,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--redis-url" in done.stderr


def _revoke(licence_no: str, *options: str) -> list[str]:
    """The command line revoking a Sichuan driving licence."""
    return ["revoke", "--type", "driving-licence", "--province", "SC", "--licence-no", licence_no, *options]


async def test_revoke_command_through_the_service(aiohttp_server: ServerFactory, scene: Scene) -> None:
    """`verifier revoke --url … --admin-key …` revokes a licence on the running service: its next scan is REVOKED."""
    server = await aiohttp_server(scene.app(Settings()))
    number = "510104198808080072"  # a driving licence's number is its holder's citizen ID number
    token = scene.driving_licence("SC", licence_no=number)
    admin = scene.admin()["Authorization"].split()[1]
    url = f"http://127.0.0.1:{server.port}"
    assert await asyncio.to_thread(main, _revoke(number, "--reason", "吊销", "--url", url, "--admin-key", admin)) == 0
    body = {"token": token, "scenario": "notary-driving-licence"}
    result = await asyncio.to_thread(
        _post, f"{url}/v1/scans", body, scene.auth("cq-notary-zhixin-01")["Authorization"].split()[1]
    )
    assert [r["code"] for r in result["reasons"]] == ["REVOKED"]
    assert await asyncio.to_thread(main, _revoke("1", "--url", url, "--admin-key", "@admin.wrong")) == 2


@pytest.mark.redis
async def test_revoke_command_straight_into_redis(
    aiohttp_server: ServerFactory, scene: Scene, redis_server: RedisServer
) -> None:
    """`verifier revoke --redis-url …` writes the revocation to the shared store; `--restore` undoes it."""
    server = await aiohttp_server(scene.app(Settings(redis_url=redis_server.url)))
    url = f"http://127.0.0.1:{server.port}/v1/scans"
    key = scene.auth("cq-notary-zhixin-01")["Authorization"].split()[1]
    args = _revoke("510104197503150063", "--redis-url", redis_server.url)
    assert await asyncio.to_thread(main, args) == 0
    body = {"token": scene.driving_licence("SC", licence_no="510104197503150063"), "scenario": "notary-driving-licence"}
    revoked = await asyncio.to_thread(_post, url, body, key)
    assert [r["code"] for r in revoked["reasons"]] == ["REVOKED"]
    assert await asyncio.to_thread(main, [*args, "--restore"]) == 0
    body = {"token": scene.driving_licence("SC", licence_no="510104197503150063"), "scenario": "notary-driving-licence"}
    restored = await asyncio.to_thread(_post, url, body, key)
    assert restored["decision"] == "accepted"


def test_admin_key_is_printed_once_and_stored_hashed(state: dict[str, str]) -> None:
    """`verifier admin-key` prints a key whose secret never appears in the state folder."""
    key = _cli(state, "admin-key")
    principal, _, secret = key.partition(".")
    stored = (Path(state["VERIFIER_STATE_DIR"]) / "api-keys.json").read_text()
    assert principal == "@admin"
    assert len(secret) >= 40
    assert secret not in stored


@pytest.mark.redis
def test_workers_exit_when_their_master_is_killed(state: dict[str, str], redis_server: RedisServer) -> None:
    """A master killed outright (SIGKILL) leaves no worker holding the port: they notice and exit."""
    port = free_port()
    args = ["serve", "--port", str(port), "--workers", "2", "--redis-url", redis_server.url]
    _cli(state, "issuer", "keys")  # the issuer publishes its keys: the workers are ready once they read them
    master = subprocess.Popen([sys.executable, "-m", "verifier", *args], env=state, stdout=subprocess.PIPE, text=True)
    try:
        wait_ready(port)
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        assert len(children) >= 2
    finally:
        master.kill()
        master.communicate(timeout=20)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
