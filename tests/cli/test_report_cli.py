"""`verifier report` (a table with Chinese names, or CSV, read straight from the audit trail) and `verifier apps key`
(an app's key for the holder's usage log); and the real service answering the usage log with such a key while
its output never holds the holder's sub."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.forge import split
from tests.helpers import wait_ready
from tests.redis_server import RedisServer, free_port
from verifier.adapters.api_keys import ApiKeys
from verifier.adapters.audit.trail import AuditTrail, engine_url
from verifier.adapters.redis_keys import RedisKeys
from verifier.adapters.redis_store import RedisStore
from verifier.cli import texttable
from verifier.cli.main import main
from verifier.core.catalogue import Catalogue
from verifier.service.ports import AuditEvent

NOTARY = "notary-driving-licence"


def _event(n: int, at: str, counter: str, scenario: str, kind: str, *reasons: str, cached: bool = False) -> AuditEvent:
    """The ``n``-th answer: accepted, or rejected for ``reasons``."""
    province = {"driving-licence": "SC", "library-card": "SC", "lawyer-licence": "CQ"}.get(kind, "-")
    decision = "rejected" if reasons else "accepted"
    return AuditEvent(
        f"cli/{n}", f"scan-{n}", at, counter, scenario, None, "YW-1", "clerk-1", kind, province, "-", "-", decision,
        reasons, cached, None,
    )  # fmt: skip


# Six answers over two China days (10:00 and 09:00 there), a re-scan among them.
EVENTS = [
    _event(1, "2026-03-10T02:00:00.000Z", "cq-notary-zhixin-01", NOTARY, "driving-licence"),
    _event(2, "2026-03-10T02:01:00.000Z", "cq-notary-zhixin-01", NOTARY, "driving-licence", cached=True),
    _event(3, "2026-03-10T03:00:00.000Z", "cq-notary-zhixin-02", NOTARY, "driving-licence", "REPLAYED"),
    _event(4, "2026-03-10T04:00:00.000Z", "cq-yuzhong-library-01", "library-borrowing", "library-card",
           "OUT_OF_PILOT_SCOPE"),
    _event(5, "2026-03-10T05:00:00.000Z", "sc-employment-01", "employment-subsidy", "-", "TOKEN_MALFORMED"),
    _event(6, "2026-03-11T01:00:00.000Z", "sc-justice-dept-01", "justice-admin", "lawyer-licence"),
]  # fmt: skip
PERIOD = ["--from", "2026-03-10", "--to", "2026-03-11"]


@pytest.fixture
def trail(tmp_path: Path, catalogue: Catalogue) -> str:
    """A SQLite trail holding :data:`EVENTS`: its ``--audit-url``."""
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"

    async def write() -> None:
        written = AuditTrail(engine_url(url, tmp_path))
        try:
            await written.write(EVENTS, catalogue)
        finally:
            await written.close()

    asyncio.run(write())
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_as_csv(capsys: pytest.CaptureFixture[str], trail: str) -> None:
    """--csv: a header row, then a row a group in the groups' order, the measures counted from the events."""
    code, out, err = _run(capsys, "report", "--audit-url", trail, *PERIOD, "--by", "type,decision", "--csv")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "type,decision,answers,first_scans,accepted,rejected,acceptance_rate",
        "-,rejected,1,1,0,1,0.0",
        "driving-licence,accepted,2,1,2,0,1.0",
        "driving-licence,rejected,1,1,0,1,0.0",
        "lawyer-licence,accepted,1,1,1,0,1.0",
        "library-card,rejected,1,1,0,1,0.0",
    ]


def test_report_as_a_table_with_chinese_names(capsys: pytest.CaptureFixture[str], trail: str) -> None:
    """The table names the period, licence types and cities in Chinese, counts each group, ends with the total, and
    fits 120 columns."""
    code, out, _ = _run(capsys, "report", "--audit-url", trail, *PERIOD, "--by", "type,decision")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("核验证照落地实效 2026-03-10 至 2026-03-11")
    cells = [line.split() for line in lines]
    assert ["中华人民共和国机动车驾驶证", "通过", "accepted", "2", "1", "2", "0", "100.0%"] in cells
    assert ["图书馆借书证", "不通过", "rejected", "1", "1", "0", "1", "0.0%"] in cells
    assert cells[-1] == ["合计", "total", "6", "5", "3", "3", "50.0%"]
    assert max(map(texttable.width, lines)) <= 120
    _, by_city, _ = _run(capsys, "report", "--audit-url", trail, *PERIOD, "--by", "day,city")
    rows = [line.split() for line in by_city.splitlines()]
    assert ["2026-03-10", "重庆市", "4", "3", "2", "2", "50.0%"] in rows
    assert ["2026-03-10", "成都市", "1", "1", "0", "1", "0.0%"] in rows
    assert ["2026-03-11", "成都市", "1", "1", "1", "0", "100.0%"] in rows


def test_report_of_one_day_and_its_total(capsys: pytest.CaptureFixture[str], trail: str) -> None:
    """Without --by, one line: the period's total; a period of one day takes that day only."""
    _, out, _ = _run(capsys, "report", "--audit-url", trail, "--from", "2026-03-11", "--to", "2026-03-11")
    assert out.splitlines()[-1].split() == ["1", "1", "1", "0", "100.0%"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--by", "colour"], ("colour", "day, month")),
        (["--from", "2026-02-30"], ("from", "YYYY-MM-DD")),
        (["--from", "2026-03-12", "--to", "2026-03-11"], ("2026-03-12", "2026-03-11")),
        (["--audit-url", "mysql://db/x"], ("--audit-url", "postgresql://")),
    ],
    ids=["by", "from", "from-after-to", "audit-url"],
)
def test_report_refuses_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: tuple[str, ...]
) -> None:
    """A bad grouping, date or trail URL: exit 2, one line in both languages naming it."""
    code, out, err = _run(capsys, "report", *argv)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert " / " in err
    for word in named:
        assert word in err


def test_report_says_postgresql_is_out_of_reach(capsys: pytest.CaptureFixture[str]) -> None:
    """A PostgreSQL nobody answers at: exit 2, naming it (its password masked) and what to check."""
    url = f"postgresql://verifier:sekret@127.0.0.1:{free_port()}/audit"
    code, _, err = _run(capsys, "report", "--audit-url", url)
    assert code == 2
    assert f"postgresql://verifier:***@127.0.0.1:{url.split(':')[3]}" in err
    assert "无法读取审计记录库" in err
    assert "check --audit-url and that PostgreSQL runs" in err
    assert "sekret" not in err


# --- verifier apps key ------------------------------------------------------------------------------


@pytest.fixture
def keyfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ApiKeys:
    """A fresh state folder's key file."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "state"))
    return ApiKeys(tmp_path / "state" / "api-keys.json")


def test_apps_key_issues_a_key_of_the_app(capsys: pytest.CaptureFixture[str], keyfile: ApiKeys) -> None:
    """A fresh key, printed alone, held by @app:<channel>; a second without --replace exits 2 and the first stays
    valid; --replace makes a new one and the old stops."""
    code, key, err = _run(capsys, "apps", "key", "tianfu-tongban")
    key = key.strip()
    assert code == 0
    assert keyfile.principal(key) == "@app:tianfu-tongban"
    assert "@app:tianfu-tongban" in err
    code, out, err = _run(capsys, "apps", "key", "tianfu-tongban")
    assert (code, out) == (2, "")
    assert "--replace" in err
    assert "revoke-key" not in err  # an app's key is replaced, not revoked: no such command to point to
    assert keyfile.principal(key) == "@app:tianfu-tongban"
    code, new, _ = _run(capsys, "apps", "key", "tianfu-tongban", "--replace")
    assert code == 0
    assert keyfile.principal(new.strip()) == "@app:tianfu-tongban"
    time.sleep(1.1)  # the key file is looked at once a second
    assert keyfile.principal(key) is None


def test_apps_key_names_the_channels_it_takes(capsys: pytest.CaptureFixture[str], keyfile: ApiKeys) -> None:
    """An unknown channel: exit 2 naming every channel of the catalogue."""
    code, out, err = _run(capsys, "apps", "key", "wechat")
    assert (code, out) == (2, "")
    for channel in ("tianfu-tongban", "yukuaiban", "jiaoguan-12123", "sichuan-renshe", "chongqing-renshe"):
        assert channel in err


@pytest.mark.redis
def test_apps_key_on_redis(capsys: pytest.CaptureFixture[str], redis_server: RedisServer) -> None:
    """With --redis-url the key's hash goes to the shared store, where every instance reads it."""
    code, key, _ = _run(capsys, "apps", "key", "yukuaiban", "--replace", "--redis-url", redis_server.url)
    assert code == 0

    async def holder() -> str | None:
        store = RedisStore.from_url(redis_server.url)
        try:
            keys = RedisKeys(store)
            await keys.refresh()
            return keys.principal(key.strip())
        finally:
            await store.close()

    assert asyncio.run(holder()) == "@app:yukuaiban"


# --- the real service ----------------------------------------------------------------------------------


def _cli(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "verifier", *argv], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def _get(url: str, key: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test server
        return json.loads(response.read())


def test_the_service_answers_an_apps_usage_log_and_never_logs_the_sub(tmp_path: Path) -> None:
    """`verifier serve` (at log level debug) with keys from `verifier apps key` and `counters key`: a library card
    shown through 天府通办 is scanned, the service's own writer puts it in the trail, the app reads the use back;
    `verifier report --state-dir` reads the same trail; and nothing the service printed holds the sub."""
    state = tmp_path / "state"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}, "VERIFIER_STATE_DIR": str(state)}
    mint = ["issuer", "mint", "--type", "library-card", "--province", "SC", "--channel", "tianfu-tongban"]
    token = _cli(env, *mint)
    sub = split(token)[1]["sub"]
    app_key, counter_key = _cli(env, "apps", "key", "tianfu-tongban"), _cli(env, "counters", "key", "cq-library-01")
    port = free_port()
    log = tmp_path / "service.log"
    with log.open("w") as output:
        service = subprocess.Popen(
            [sys.executable, "-m", "verifier", "serve", "--port", str(port), "--log-level", "debug"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_ready(port, process=service)
            body = json.dumps({"token": token, "scenario": "library-borrowing"}).encode()
            scan = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/scans",
                data=body,
                headers={"Authorization": f"Bearer {counter_key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(scan, timeout=5) as response:  # noqa: S310 - loopback test server
                assert json.loads(response.read())["decision"] == "accepted"
            uses: list[Any] = []
            deadline = time.monotonic() + 20
            while not uses and time.monotonic() < deadline:  # the writer writes within a second
                uses = _get(f"http://127.0.0.1:{port}/v1/uses?sub={sub}", app_key)["uses"]
                time.sleep(0.2)
        finally:
            service.terminate()
            service.wait(timeout=20)
    assert [(u["licence"]["type"], u["decision"]) for u in uses] == [("library-card", "accepted")]
    printed = log.read_text(encoding="utf-8")
    assert '"event":"scan"' in printed.replace(" ", "")  # what it logs is here
    assert sub not in printed
    report = _cli(env, "report", "--state-dir", str(state), "--by", "type", "--csv").splitlines()
    assert report[1].startswith("library-card,1,1,1,0,")
