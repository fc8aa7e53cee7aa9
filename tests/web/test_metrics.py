"""/metrics through prometheus_client: scans labelled by decision, licence type and both provinces; the
429 and 503 the service's errors mean, counted; and `verifier serve --workers 2` on a real Redis answering
every scrape with the whole instance's counts, whichever worker answers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.helpers import Client, ClientFactory, assert_problem, wait_ready
from tests.redis_server import RedisServer, free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.bench.procs import listeners
from verifier.errors import RateLimitedError, TrustNotLoadedError
from verifier.service.settings import Settings
from verifier.web import appkeys
from verifier.web.metrics import metric_total
from verifier.web.server import ProblemRunner

NOTARY = "cq-notary-zhixin-01"  # a Chongqing counter
SCENARIO = "notary-driving-licence"


async def _metrics(client: Client) -> str:
    async with client.get("/metrics") as response:
        assert response.status == 200
        return await response.text()


async def test_scans_are_counted_by_decision_licence_type_and_both_provinces(
    aiohttp_client: ClientFactory, scene: Scene
) -> None:
    """Each scan counts once under its decision, licence type, issuing province and counter province; a
    token the catalogue cannot place counts under licence type and issuing province ``-``."""
    client = await aiohttp_client(scene.app(store=MemoryStore()))
    for province in ("SC", "SC", "CQ"):
        assert (await scene.post_scan(client, NOTARY, scene.driving_licence(province)))[0] == 200
    assert (await scene.post_scan(client, NOTARY, "not-a-token"))[0] == 200
    text = await _metrics(client)
    route = {"licence_type": "driving-licence", "counter_province": "CQ"}
    assert metric_total(text, "verifier_scans_total", decision="accepted", issuing_province="SC", **route) == 2
    assert metric_total(text, "verifier_scans_total", decision="accepted", issuing_province="CQ", **route) == 1
    unknown = {"licence_type": "-", "issuing_province": "-", "counter_province": "CQ"}
    assert metric_total(text, "verifier_scans_total", decision="rejected", **unknown) == 1
    assert metric_total(text, "verifier_scans_total") == 4
    assert metric_total(text, "verifier_scan_seconds_count") == 4
    assert "# TYPE verifier_scan_seconds histogram" in text


def _refusing(app: web.Application, error: Exception) -> None:
    """Make the app's scan service raise ``error`` for every scan, as the service does when it holds one back."""

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    app[appkeys.SERVICE].scan = refuse  # type: ignore[method-assign]


@pytest.mark.parametrize(("retry_after", "header"), [(2.1, "3"), (0.01, "1"), (1.0, "1")])
async def test_a_counter_over_its_rate_is_a_429_with_whole_seconds_to_wait(
    aiohttp_client: ClientFactory, scene: Scene, retry_after: float, header: str
) -> None:
    """RateLimitedError is a 429 problem+json in Chinese and English, Retry-After in whole seconds rounded
    up and never 0, counted in /metrics under the counter."""
    client = await aiohttp_client(scene.app(store=MemoryStore()))
    _refusing(client.app, RateLimitedError(NOTARY, retry_after))
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    for _ in range(2):
        response = await client.post("/v1/scans", json=body, headers=scene.auth(NOTARY))
        problem = await assert_problem(response, 429, header, "频繁", "rate")
        assert response.headers["Retry-After"] == header
        assert "decision" not in problem
    text = await _metrics(client)
    assert metric_total(text, "verifier_rate_limited_total", counter=NOTARY) == 2
    assert metric_total(text, "verifier_scans_total") == 0


async def test_the_real_service_over_its_rate_answers_429_and_counts_it(
    aiohttp_client: ClientFactory, scene: Scene
) -> None:
    """A counter allowed 0.2 scans/s with a burst of 2 gets its third scan at once refused with 429 and
    Retry-After of the whole seconds to wait (5 s for a scan at 0.2/s), counted under that counter only."""
    settings = Settings(counter_rate=0.2, counter_burst=2)
    client = await aiohttp_client(scene.app(settings, store=MemoryStore()))
    statuses = [(await scene.post_scan(client, NOTARY, scene.driving_licence("SC")))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    response = await client.post("/v1/scans", json=body, headers=scene.auth(NOTARY))
    await assert_problem(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 5
    text = await _metrics(client)
    assert metric_total(text, "verifier_rate_limited_total", counter=NOTARY) == 2
    assert metric_total(text, "verifier_rate_limited_total") == 2
    assert metric_total(text, "verifier_scans_total") == 2


async def test_a_scan_before_any_trust_list_is_a_503_with_retry_after(
    aiohttp_client: ClientFactory, scene: Scene
) -> None:
    """TrustNotLoadedError is a 503 problem+json with Retry-After, counted; never a decision."""
    client = await aiohttp_client(scene.app(store=MemoryStore()))
    _refusing(client.app, TrustNotLoadedError("信任列表尚未加载 / the trust list is not loaded yet"))
    body = {"token": scene.driving_licence("SC"), "scenario": SCENARIO}
    response = await client.post("/v1/scans", json=body, headers=scene.auth(NOTARY))
    problem = await assert_problem(response, 503, "trust list", "信任列表")
    assert "decision" not in problem
    assert response.headers["Retry-After"] == "2"
    assert metric_total(await _metrics(client), "verifier_trust_not_loaded_total") == 1


@pytest.fixture
async def direct(scene: Scene) -> AsyncIterator[tuple[web.Application, str]]:
    """The app served as `verifier serve` serves it (the scan through the direct route); app and base URL."""
    app = scene.app(store=MemoryStore())
    runner = ProblemRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [(RateLimitedError(NOTARY, 4.5), 429, "5"), (TrustNotLoadedError("no trust list yet"), 503, "2")],
    ids=["rate-limited", "trust-not-loaded"],
)
async def test_the_direct_scan_route_maps_held_back_scans_alike(
    direct: tuple[web.Application, str], scene: Scene, error: Exception, status: int, retry_after: str
) -> None:
    """On the direct route of `verifier serve`, a held-back scan is the same problem with Retry-After."""
    app, url = direct
    _refusing(app, error)
    request = urllib.request.Request(  # noqa: S310 - loopback test server
        f"{url}/v1/scans",
        data=json.dumps({"token": "x", "scenario": SCENARIO}).encode(),
        headers={"Content-Type": "application/json", **scene.auth(NOTARY)},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    with refused.value as answer:
        assert (answer.code, answer.headers["Retry-After"]) == (status, retry_after)
        assert json.loads(answer.read())["status"] == status


# --- verifier serve --workers 2 ------------------------------------------------------------------------


def _scan(port: int, key: str, token: str) -> dict[str, Any]:
    """One scan over a new connection (so the kernel spreads them over the workers)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/scans",
        data=json.dumps({"token": token, "scenario": SCENARIO}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}", "Connection": "close"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
        result: dict[str, Any] = json.loads(response.read())
        return result


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def _worker_scans(folder: str, pid: int, into: Path) -> float:
    """The scans one worker counted: its own files alone, read as prometheus_client reads the folder."""
    into.mkdir()
    for file in Path(folder).glob(f"*_{pid}.db"):
        shutil.copy(file, into / file.name)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(into))  # type: ignore[no-untyped-call]
    return metric_total(generate_latest(registry).decode(), "verifier_scans_total")


def _metrics_folder(pid: int) -> str:
    """The PROMETHEUS_MULTIPROC_DIR a running process was started with."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    [folder] = [entry.split(b"=", 1)[1].decode() for entry in environ if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return folder


@pytest.mark.redis
def test_two_workers_answer_every_scrape_with_the_instances_counts(
    scene: Scene, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`verifier serve --workers 2`: scans land on both workers, yet every one of many scrapes (each on a new
    connection, so either worker answers) shows counters equal to the scans made so far, never going back;
    the workers count into one private folder, which is gone once the service stops."""
    verifier = [sys.executable, "-m", "verifier"]
    # The session's state folder: the issuer publishes its keys there (minting does), the counter's key goes
    # to Redis, where a service on Redis reads keys; both before the service starts.
    mint = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    subprocess.run([*verifier, *mint], capture_output=True, check=True, timeout=60)
    issue = ["counters", "key", NOTARY, "--replace", "--redis-url", redis_server.url]
    key = subprocess.run([*verifier, *issue], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    port = free_port()
    argv = [sys.executable, "-m", "verifier", "serve", "--port", str(port), "--workers", "2"]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    master = subprocess.Popen(
        [*argv, "--redis-url", redis_server.url, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[tuple[float, float, float]] = []
    try:
        wait_ready(port, process=master)
        deadline = time.monotonic() + 30
        while listeners(port) < 2 and time.monotonic() < deadline:  # the second worker may still be starting
            time.sleep(0.1)
        children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        workers = [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        folders = {_metrics_folder(pid) for pid in workers}
        assert len(workers) == 2
        assert len(folders) == 1
        [folder] = folders
        for made in range(1, 5):
            again = scene.driving_licence("SC")
            for token in (
                again,
                scene.driving_licence("SC"),
                scene.driving_licence("CQ"),
                again,
                f"not-a-token-{made}",
            ):
                _scan(port, key, token)
            for _ in range(3):
                text = _scrape(port)
                figures = (
                    metric_total(text, "verifier_scans_total", decision="accepted"),
                    metric_total(text, "verifier_scans_total", decision="rejected"),
                    metric_total(text, "verifier_cache_hits_total"),
                )
                assert figures == (4 * made, made, made), text
                assert metric_total(text, "verifier_scan_seconds_count") == 5 * made
                assert metric_total(text, "verifier_store_safe") == 1
                seen.append(figures)
        accepted_sc = metric_total(
            text, "verifier_scans_total", decision="accepted", licence_type="driving-licence", issuing_province="SC"
        )
        assert accepted_sc == 3 * 4
        each = [_worker_scans(folder, pid, tmp_path / str(pid)) for pid in workers]
        assert min(each) > 0  # 20 scans on new connections all on one worker: one chance in half a million
        assert sum(each) == 20
    finally:
        master.terminate()
        _, errors = master.communicate(timeout=30)
    assert seen == sorted(seen)
    assert master.returncode == 0, errors
    assert not Path(folder).exists()
