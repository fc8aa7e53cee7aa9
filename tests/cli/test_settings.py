"""Every setting of `verifier serve` as a flag and a VERIFIER_<FLAG> variable, from one table: each
Settings field has one, with Settings' own default, in `serve --help` and in the README; the variable
works and the flag wins; a bad value is refused with exit 2, in one line in both languages, naming the
flag or the variable. The other commands read the same variables."""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ClientFactory, wait_ready
from tests.redis_server import RedisServer, free_port
from tests.scenes import Scene
from verifier.cli.main import build_parser, main
from verifier.cli.settings_table import SETTINGS, Setting, markdown_table, settings_fields, settings_from
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
Captured = pytest.CaptureFixture[str]
BY_FLAG = {s.flag: s for s in SETTINGS}


def _value(settings: Settings, setting: Setting) -> Any:
    return functools.reduce(getattr, setting.field.split("."), settings)


def _samples(setting: Setting) -> tuple[str, str]:
    """Two valid values other than the default, as text: one for the variable, one for the flag."""
    if setting.kind is bool:
        return "1", "0"
    if setting.choices:
        others = [c for c in setting.choices if c != setting.default]
        return others[0], others[1]
    if setting.kind in (str, tuple):
        return f"/from/env/{setting.dest}", f"/from/flag/{setting.dest}"
    assert setting.low is not None
    assert setting.high is not None
    low, high = setting.kind(setting.low), setting.kind(setting.high)
    return (str(high), str(low)) if setting.default not in (high, low) else (str(high - 1), str(low + 1))


def _serve(args: list[str], env: dict[str, str]) -> Settings:
    """The settings `verifier serve ARGS` runs with in ``env``."""
    return settings_from(build_parser().parse_args(["serve", *args]), env)


def test_every_setting_has_one_flag_and_variable_with_settings_own_default() -> None:
    """Each field of Settings (and of its policy) has exactly one row; flags and variables are unique and
    VERIFIER_ plus the flag in capitals; the table's default is Settings()'s."""
    assert sorted(s.field for s in SETTINGS) == sorted(settings_fields())
    assert len(BY_FLAG) == len(SETTINGS)
    for setting in SETTINGS:
        assert setting.env == "VERIFIER_" + setting.flag[2:].upper().replace("-", "_")
        assert setting.default == _value(Settings(), setting), setting.flag
        assert type(setting.default) in (setting.kind, type(None)), setting.flag


def test_the_contracts_flags_are_all_there() -> None:
    """The settings the contract names, each under its own flag."""
    named = "redis-url jwks data-dir state-dir audit-url leeway max-lifetime max-clock-skew record-ttl trust-refresh"
    named += " counter-rate counter-burst min-replica-acks allow-volatile-store header-timeout workers log-level"
    assert {f"--{name}" for name in named.split()} <= set(BY_FLAG)
    assert BY_FLAG["--max-clock-skew"].default == 60
    assert BY_FLAG["--min-replica-acks"].default == 0


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.flag)
def test_the_variable_works_and_the_flag_wins(setting: Setting) -> None:
    """Unset: the default; the variable alone: its value; the variable and the flag: the flag's."""
    from_env, from_flag = _samples(setting)
    env = {setting.env: from_env}
    flag = [f"--no-{setting.flag[2:]}"] if setting.kind is bool else [setting.flag, from_flag]
    assert _value(_serve([], {}), setting) == setting.default
    assert _value(_serve([], env), setting) == setting.parse(from_env, setting.env)
    assert _value(_serve(flag, env), setting) == setting.parse(from_flag, setting.flag)
    assert _value(_serve([], {setting.env: " "}), setting) == setting.default  # empty counts as unset


def test_leeway_and_lifetime_go_into_the_policy() -> None:
    """--leeway and --max-lifetime are the decision's policy."""
    settings = _serve(["--leeway", "7"], {"VERIFIER_MAX_LIFETIME": "120"})
    assert (settings.policy.leeway, settings.policy.max_lifetime) == (7, 120)


def test_the_readme_lists_every_setting_with_its_default() -> None:
    """README.md holds the table made from the settings, row for row."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme, "README.md's settings table should read:\n" + markdown_table()
    for setting in SETTINGS:
        assert f"`{setting.env}` | {setting.shown_default()} |" in markdown_table()


def test_serve_help_lists_every_setting_with_its_default_and_variable() -> None:
    """`verifier serve --help` names each flag, its default and its variable."""
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ, "COLUMNS": "400"},
    )
    flat = " ".join(done.stdout.split())
    for setting in SETTINGS:
        assert setting.flag in flat
        assert f"(default {setting.shown_default()}" in flat
        assert f"${setting.env})" in flat


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--port", "http"], {}, "--port"),
        (["--port", "70000"], {}, "--port"),
        ([], {"VERIFIER_WORKERS": "0"}, "VERIFIER_WORKERS"),
        ([], {"VERIFIER_LEEWAY": "5s"}, "VERIFIER_LEEWAY"),
        (["--max-lifetime", "-1"], {"VERIFIER_MAX_LIFETIME": "120"}, "--max-lifetime"),
        (["--counter-rate", "nan"], {}, "--counter-rate"),
        ([], {"VERIFIER_TRUST_REFRESH": "inf"}, "VERIFIER_TRUST_REFRESH"),
        ([], {"VERIFIER_ALLOW_VOLATILE_STORE": "maybe"}, "VERIFIER_ALLOW_VOLATILE_STORE"),
        (["--log-level", "loud"], {}, "--log-level"),
    ],
    ids=["not-a-number", "out-of-range", "env-below-range", "env-unit", "flag-wins-and-is-bad", "nan", "inf", "bool",
         "choice"],
)  # fmt: skip
def test_a_bad_value_exits_2_naming_where_it_came_from(
    args: list[str],
    env: dict[str, str],
    named: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Captured,
) -> None:
    """A value that is not a number, out of range or not one of the choices: exit 2 and one line, in Chinese
    and English, naming the flag or variable, before anything starts."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the service started with a bad value")

    monkeypatch.setattr("verifier.cli.service._run_worker", started)
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.count(named) == 2, err  # once in each language
    assert " / " in err
    assert any("\u4e00" <= ch <= "\u9fff" for ch in err)


def test_version_is_the_packages() -> None:
    """`verifier --version` prints the installed package's version."""
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == f"verifier {importlib.metadata.version('cy-licence-verifier')}"


def _data_with_a_new_counter(folder: Path) -> Path:
    """A copy of data/ with one more counter, cq-notary-zhixin-99, registered for notarising driving licences."""
    data = folder / "data"
    shutil.copytree(ROOT / "data", data)
    with (data / "counters.toml").open("a", encoding="utf-8") as out:
        out.write(
            '\n[[counter]]\nid = "cq-notary-zhixin-99"\ninstitution = "cq-notary-zhixin"\n'
            'name_zh = "测试窗口"\nscenarios = ["notary-driving-licence"]\n'
        )
    return data


def test_catalogue_and_counters_read_the_data_folder_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Captured
) -> None:
    """`verifier counters` and `verifier catalogue` read VERIFIER_DATA_DIR, as `serve` does."""
    monkeypatch.setenv("VERIFIER_DATA_DIR", str(_data_with_a_new_counter(tmp_path)))
    assert main(["counters", "--json"]) == 0
    assert "cq-notary-zhixin-99" in capsys.readouterr().out
    (tmp_path / "data" / "channels.toml").write_text("not = [toml", encoding="utf-8")
    assert main(["catalogue", "--json"]) == 2
    assert "channels.toml" in capsys.readouterr().err


def _mint(capsys: Captured, ttl: int) -> str:
    args = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    assert main([*args, "--ttl", str(ttl)]) == 0
    return capsys.readouterr().out.strip()


def test_check_reads_the_trust_list_and_policy_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Captured
) -> None:
    """`verifier check` decides with the trust list VERIFIER_JWKS names and the policy VERIFIER_MAX_LIFETIME
    sets, as the service would."""
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.issuer.keys import KeyStore

    token = _mint(capsys, ttl=300)
    check = ["check", token, "--counter", "cq-notary-zhixin-01", "--scenario", "notary-driving-licence", "--json"]
    assert main(check) == 0, capsys.readouterr().out
    capsys.readouterr()
    monkeypatch.setenv("VERIFIER_MAX_LIFETIME", "120")
    assert main(check) == 1
    assert "LIFETIME_TOO_LONG" in capsys.readouterr().out
    monkeypatch.delenv("VERIFIER_MAX_LIFETIME")
    other = KeyStore(load_catalogue().units.values(), directory=tmp_path / "other")
    other.keyring()  # another issuer's keys: the token's key is not among them
    monkeypatch.setenv("VERIFIER_JWKS", str(tmp_path / "other" / "jwks.json"))
    assert main(check) == 1
    assert '"decision": "rejected"' in capsys.readouterr().out
    monkeypatch.setenv("VERIFIER_JWKS", str(tmp_path / "missing.json"))
    assert main(check) == 2


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "verifier", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip()


def _scan(port: int, key: str, token: str) -> dict[str, Any]:
    """The decision the service on ``port`` answers for ``token`` shown for notarising a driving licence."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/scans",
        data=json.dumps({"token": token, "scenario": "notary-driving-licence"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
        answer: dict[str, Any] = json.loads(response.read())
        return answer


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.redis)])
def test_serve_runs_with_the_port_folders_and_policy_it_is_given(
    tmp_path: Path, workers: int, request: pytest.FixtureRequest
) -> None:
    """`verifier serve` with flags over variables: it listens on --port, not VERIFIER_PORT; keeps its state in
    --state-dir, not VERIFIER_STATE_DIR; decides with the rules of --data-dir (a counter only that copy has)
    and with VERIFIER_MAX_LIFETIME (a token living longer is rejected). Two workers (VERIFIER_WORKERS, on the
    Redis of VERIFIER_REDIS_URL) are spawned afresh and must be given the same."""
    data, state, elsewhere = _data_with_a_new_counter(tmp_path), tmp_path / "state", tmp_path / "not-this-state"
    port = free_port()
    env = {
        **os.environ,
        "VERIFIER_PORT": str(free_port()),
        "VERIFIER_STATE_DIR": str(elsewhere),
        "VERIFIER_DATA_DIR": str(ROOT / "data"),
        "VERIFIER_MAX_LIFETIME": "300",
        "VERIFIER_WORKERS": str(workers),
    }
    if workers > 1:
        env["VERIFIER_REDIS_URL"] = request.getfixturevalue("redis_server").url
    # The commands read the same variables: the state and rules, and the Redis the keys are shared in.
    same = {**os.environ, "VERIFIER_STATE_DIR": str(state), "VERIFIER_DATA_DIR": str(data)}
    if workers > 1:
        same["VERIFIER_REDIS_URL"] = env["VERIFIER_REDIS_URL"]
    _cli(same, "issuer", "jwks")  # the mock issuer publishes its keys where the service is told to look
    args = ["serve", "--port", str(port), "--state-dir", str(state), "--data-dir", str(data)]
    process = subprocess.Popen(
        [sys.executable, "-m", "verifier", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_ready(port, process=process)
        key = _cli(same, "counters", "key", "cq-notary-zhixin-99")
        mint = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
        accepted = _scan(port, key, _cli(same, *mint, "--ttl", "300"))
        too_long = _scan(port, key, _cli(same, *mint, "--ttl", "600"))
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert accepted["decision"] == "accepted", (accepted, output[-2000:])
    assert [r["code"] for r in too_long["reasons"]] == ["LIFETIME_TOO_LONG"]
    assert list((state / "last-good-trust").iterdir())  # the trust list it read, kept in its own state folder
    assert not elsewhere.exists()
    assert output.count("verifier listening") == workers


@pytest.mark.redis
async def test_revoke_reads_the_redis_url_variable(
    aiohttp_client: ClientFactory, scene: Scene, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verifier revoke` without --url or --redis-url writes to the Redis VERIFIER_REDIS_URL names, as
    `verifier serve` reads it: the licence's next scan there is REVOKED."""
    client = await aiohttp_client(scene.app(Settings(redis_url=redis_server.url)))
    monkeypatch.setenv("VERIFIER_REDIS_URL", redis_server.url)
    number = citizen_id(99)  # a driving licence's number is its holder's citizen ID number
    revoke = ["revoke", "--type", "driving-licence", "--province", "SC", "--licence-no", number]
    assert await asyncio.to_thread(main, revoke) == 0
    body = {"token": scene.driving_licence("SC", licence_no=number), "scenario": "notary-driving-licence"}
    response = await client.post("/v1/scans", json=body, headers=scene.auth("cq-notary-zhixin-01"))
    assert [r["code"] for r in (await response.json())["reasons"]] == ["REVOKED"]
