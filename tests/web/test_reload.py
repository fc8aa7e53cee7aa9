"""Rules reloaded while the service runs, on a real ``verifier serve`` reading its own copy of ``data/``
(``VERIFIER_DATA_DIR``): after ``SIGHUP`` or ``POST /v1/admin/reload`` the edited rule decides the next
scan; a bad edit is refused and logged with its file, entry and field, and the rules in use still decide.

The edit is the one the catalogue asks operators for: row 6 (道路运输从业资格证) lost its pilot scope in
the source, so its scans are RULES_INCOMPLETE until the cell is filled in."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_ready
from tests.redis_server import RedisServer, free_port
from verifier.adapters.api_keys import ADMIN, ApiKeys
from verifier.adapters.catalogue_files import load_catalogue
from verifier.adapters.paths import data_dir
from verifier.issuer.apps import apps
from verifier.issuer.keys import KeyStore

COUNTER = "sc-transport-enforcement-01"
SCENARIO = "transport-service-enforcement"
ROW_6_LOST = 'lost = ["pilot_scope"]\nnote = "试点范围 lost; row 5 has 四川全省范围内 / 重庆全市范围内."\n'
ROW_6_FILLED = (
    "# pilot scope filled in by the operator, as row 5's\n"
    'pilot_scope.SC = { shape = "province", label_zh = "四川全省范围内" }\n'
    'pilot_scope.CQ = { shape = "province", label_zh = "重庆全市范围内" }\n'
)
DRIVING_CHANNELS = 'channels = ["jiaoguan-12123"]\nscenarios = ["notary-driving-licence"]\n'
BAD_CHANNEL = 'channels = ["jiaoguan-12123", "wechat"]\nscenarios = ["notary-driving-licence"]\n'
BAD_PROBLEM = "data/licence-types.toml: licence seq=1 (driving-licence), field channels: unknown channel 'wechat'"


class Service:
    """``verifier serve`` as a process of its own, on a copy of ``data/`` and a state folder of its own; its
    log lines are read as they come."""

    def __init__(self, root: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data = root / "data"
        shutil.copytree(data_dir(), self.data)
        state = root / "state"
        catalogue = load_catalogue(self.data)
        self.apps = apps(catalogue, KeyStore(catalogue.units.values(), state).keyring())
        self.port = free_port()
        environment = {**os.environ, "VERIFIER_STATE_DIR": str(state), "VERIFIER_DATA_DIR": str(self.data)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "verifier", "serve", "--port", str(self.port), *extra],
            env={**environment, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wait_ready(self.port, process=self.process)
        except AssertionError:
            self.stop()
            raise
        self.keys: dict[str, str] = {}

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("{") and '"rules_reload' in line:
                self.events.put(json.loads(line))

    def edit(self, old: str, new: str) -> None:
        """Replace ``old`` by ``new`` in the copy's licence-types.toml."""
        path = self.data / "licence-types.toml"
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1
        path.write_text(text.replace(old, new), encoding="utf-8")

    def request(self, path: str, who: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """POST ``path`` with ``who``'s key: the status and the JSON body."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body or {}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.keys[who]}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def scan(self) -> list[str]:
        """A fresh row-6 token scanned at the transport counter: its reason codes ([] when accepted)."""
        token = self.apps["tianfu-tongban"].present("transport-qual", "SC").token
        status, decision = self.request("/v1/scans", COUNTER, {"token": token, "scenario": SCENARIO})
        assert status == 200, decision
        assert (decision["decision"] == "accepted") == (decision["reasons"] == []), decision
        return [reason["code"] for reason in decision["reasons"]]

    def next_event(self, timeout: float = 30) -> dict[str, Any]:
        """The next reload line the service logged."""
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no reload logged:\n" + "".join(self.lines[-20:])) from None

    def stop(self) -> None:
        """SIGTERM, and the rest of its output read."""
        self.process.terminate()
        self.process.wait(timeout=20)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _key(redis_url: str, *command: str) -> str:
    """A key command against the service's Redis, as an operator runs it: the key it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "verifier", *command, "--redis-url", redis_url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """One service on the embedded store, with its keys in the state folder's key file."""
    running = Service(tmp_path)
    keys = ApiKeys(tmp_path / "state" / "api-keys.json")
    running.keys = {who: keys.issue(who) for who in (COUNTER, ADMIN)}
    yield running
    running.stop()


def test_sighup_reloads_the_rules_and_a_bad_edit_is_refused(service: Service) -> None:
    """SIGHUP: the filled-in row decides the next scan. A later bad edit (row 6 emptied again, and an
    unknown channel on row 1) is refused as a whole, logged with its file, entry and field; the running
    rules still decide and the process keeps serving."""
    assert service.scan() == ["RULES_INCOMPLETE"]
    service.edit(ROW_6_LOST, ROW_6_FILLED)
    os.kill(service.process.pid, signal.SIGHUP)
    reloaded = service.next_event()
    assert (reloaded["event"], reloaded["trigger"]) == ("rules_reloaded", "SIGHUP")
    assert service.scan() == []

    service.edit(ROW_6_FILLED, ROW_6_LOST)
    service.edit(DRIVING_CHANNELS, BAD_CHANNEL)
    os.kill(service.process.pid, signal.SIGHUP)
    refused = service.next_event()
    assert refused["event"] == "rules_reload_refused"
    assert refused["problems"] == [BAD_PROBLEM]
    assert "data/ is invalid; the rules in use stay" in refused["message"]
    assert "继续使用原有规则" in refused["message"]
    assert service.scan() == []  # the filled-in row, still
    assert service.process.poll() is None


def test_the_reload_endpoint_swaps_good_rules_and_answers_bad_ones_with_their_problems(service: Service) -> None:
    """POST /v1/admin/reload with the administrator's key: the new rule decides the next scan at once; a bad
    edit answers 422 naming the file, entry and field, and the rules in use stay. A counter's key is 403."""
    assert service.scan() == ["RULES_INCOMPLETE"]
    service.edit(ROW_6_LOST, ROW_6_FILLED)
    assert service.request("/v1/admin/reload", COUNTER)[0] == 403
    assert service.scan() == ["RULES_INCOMPLETE"]
    status, answer = service.request("/v1/admin/reload", ADMIN)
    assert (status, answer["reloaded"], answer["licence_types"]) == (200, True, 19), answer
    assert service.scan() == []

    service.edit(ROW_6_FILLED, ROW_6_LOST)
    service.edit(DRIVING_CHANNELS, BAD_CHANNEL)
    status, problem = service.request("/v1/admin/reload", ADMIN)
    assert (status, problem["problems"]) == (422, [BAD_PROBLEM]), problem
    assert "data/ is invalid" in problem["detail"]
    assert service.scan() == []
    assert service.next_event()["event"] == "rules_reloaded"
    logged = service.next_event()
    assert (logged["event"], logged["trigger"], logged["problems"]) == (
        "rules_reload_refused",
        "endpoint",
        [BAD_PROBLEM],
    )


@pytest.mark.redis
def test_with_workers_the_master_passes_sighup_and_the_endpoint_on_to_every_worker(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    """`verifier serve --workers 2`: SIGHUP to the master reloads both workers, and so does the endpoint
    reached on either; every scan after that, whichever worker takes it, is decided by the new rules."""
    service = Service(tmp_path, "--workers", "2", "--redis-url", own_redis.url)
    try:
        service.keys = {
            COUNTER: _key(own_redis.url, "counters", "key", COUNTER),
            ADMIN: _key(own_redis.url, "admin-key"),
        }
        service.edit(ROW_6_LOST, ROW_6_FILLED)
        pids: set[int] = set()
        for _ in range(5):  # a worker ignores SIGHUP until its handler is in place: send again until both reload
            os.kill(service.process.pid, signal.SIGHUP)
            with contextlib.suppress(AssertionError):
                while len(pids) < 2:
                    pids.add(service.next_event(timeout=2)["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        assert [service.scan() for _ in range(8)] == [[]] * 8

        service.edit(ROW_6_FILLED, ROW_6_LOST)
        assert service.request("/v1/admin/reload", ADMIN)[0] == 200
        events = [service.next_event() for _ in range(3)]  # the worker that answered, then both from the master
        assert {e["pid"] for e in events} == pids
        assert [e["trigger"] for e in events].count("SIGHUP") == 2
        assert [service.scan() for _ in range(8)] == [["RULES_INCOMPLETE"]] * 8
    finally:
        service.stop()
