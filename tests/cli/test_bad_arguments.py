"""Operator mistakes on every command, as a real ``python -m verifier`` process meets them: each exits 2
with one line on standard error, in Chinese and English, naming what is wrong and what to do — never a
traceback, never "listening" for a port it could not bind. The sweep's table (command, argument,
message) is written to ``test-artifacts/bad-arguments.md``."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.redis_server import RedisServer, free_port
from tests.scenes import Scene
from verifier.adapters.redis_store import RedisStore
from verifier.cli.main import build_parser
from verifier.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "bad-arguments.md"
HELD = "{held}"  # an argument replaced by a port this test holds open
CLOSED = "{closed}"  # … by a port nobody listens on
TOKEN = "{token}"  # … by a freshly minted token
FOLDER = "{folder}"  # … by a folder that exists
SHOWN = {HELD: "PORT-IN-USE", CLOSED: "CLOSED-PORT", TOKEN: "TOKEN", FOLDER: "FOLDER"}  # how the table shows them
MINT = ("issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123")
REVOKE = ("revoke", "--type", "driving-licence", "--province", "SC", "--licence-no", "51010077")
UNKNOWN_TYPE = ("revoke", "--type", "nosuch", "--province", "SC", "--licence-no", "1")
CHINESE = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Case:
    """One mistake: the command line (after ``verifier``), what the message must name, extra environment."""

    argv: tuple[str, ...]
    names: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The case's test id."""
        return (" ".join(self.argv) or "(none)") + "".join(f" [{k}={v}]" for k, v in self.env.items())


def case(*argv: str, names: str | tuple[str, ...], env: dict[str, str] | None = None) -> Case:
    """A case; ``names`` is what its message must contain (one string or several)."""
    return Case(argv, (names,) if isinstance(names, str) else names, env or {})


CASES = [
    case(names="COMMAND"),
    case("bogus", names="'bogus'"),
    case("demo", "--jsn", names="--jsn"),
    case("demo", "--json", "extra", names="extra"),
    case("serve", "--port", "abc", names="'abc'"),
    case("serve", "--port", "99999", names="99999"),
    case("serve", "--port", "0", names=("--port", "1–65535")),
    case("serve", "--port", HELD, names=("already in use", "已被占用", "--port")),
    case("serve", "--host", "999.1.1.1", names=("999.1.1.1", "127.0.0.1")),
    case("serve", "--host", "192.0.2.1", names=("192.0.2.1", "not an address of this machine")),
    case("serve", "--redis-url", "localhost:6379", names=("localhost:6379", "redis://")),
    case("serve", "--redis-url", "redis://127.0.0.1:6379/abc", names="'abc'"),
    case("serve", "--redis-url", "redis://127.0.0.1:99999/0", names="65535"),
    case("serve", "--redis-url", "redis://:secret@127.0.0.1:70000/0", names="redis://:***@127.0.0.1:70000/0"),
    case("serve", "--redis-url", "redis+cluster://127.0.0.1:7000/1", names="cluster"),
    case("serve", "--redis-url", "redis+sentinel://127.0.0.1:26379", names="/SERVICE"),
    case("serve", "--log-level", "bogus", names=("'bogus'", "debug, info")),
    case("serve", "--workers", "0", names=("--workers", "1–64")),
    case("serve", "--workers", "2", names="--redis-url"),
    case("serve", "--max-clock-skew", "0", names="--max-clock-skew"),
    case("serve", names=("VERIFIER_MAX_CLOCK_SKEW", "'soon'"), env={"VERIFIER_MAX_CLOCK_SKEW": "soon"}),
    case("serve", names=("VERIFIER_REDIS_URL", "localhost:6379"), env={"VERIFIER_REDIS_URL": "localhost:6379"}),
    case("serve", "--min-replica-acks", "-1", names="--min-replica-acks"),
    case("serve", "--min-replica-acks", "1", "--redis-url", "redis+cluster://127.0.0.1:7000", names="AOF"),
    case("serve", "--wokers", "2", names="--wokers"),
    case("serve", "--counter-rate", "abc", names=("--counter-rate", "'abc'")),
    case("serve", "--jwks", "XX=jwks.json", names=("XX=jwks.json", "SC")),
    case("issuer", names="COMMAND"),
    case("issuer", "serve", "--port", "abc", names="'abc'"),
    case("issuer", "serve", "--port", "70000", names="70000"),
    case("issuer", "serve", "--port", HELD, names=("already in use", "--port")),
    case("issuer", "serve", "--host", "999.1.1.1", names="999.1.1.1"),
    case("issuer", "mint", names="--type"),
    case("issuer", "mint", "--type", "nosuch", "--province", "SC", "--channel", "jiaoguan-12123", names="nosuch"),
    case("issuer", "mint", "--type", "driving-licence", "--province", "XX", "--channel", "x", names="'XX'"),
    case(*MINT[:-1], "bogus-app", names=("bogus-app", "jiaoguan-12123")),
    case(*MINT[:-1], "yukuaiban", names=("yukuaiban", "jiaoguan-12123")),
    case(*MINT, "--ttl", "abc", names="'abc'"),
    case(*MINT, "--ttl", "9999", names="600"),
    case(*MINT, "--valid-from", "2020-13-01", names=("2020-13-01", "YYYY-MM-DD")),
    case(*MINT, "--attr", "novalue", names=("novalue", "cls")),
    case(*MINT, "--unit", "nosuch", names=("nosuch", "sc-police")),
    case(*MINT, "--qr", "/nonexistent-folder/token.png", names="/nonexistent-folder"),
    case(*MINT, "--qr", FOLDER, names=("is a folder", "token.png")),
    case("issuer", "rotate", names="--unit"),
    case("issuer", "rotate", "--unit", "nosuch", names=("nosuch", "sc-police")),
    case("issuer", "rotate", "--unit", "sc-police", "--alg", "RS256", names=("RS256", "ES256")),
    case("issuer", "withdraw", names="--kid"),
    case("issuer", "withdraw", "--kid", "nosuch", names="nosuch"),
    case("issuer", "keys", "extra", names="extra"),
    case("issuer", "jwks", "--province", "XX", names="'XX'"),
    case("issuer", "jwks", "--bogus", names="--bogus"),
    case("check", names=("--counter", "--scenario")),
    case("check", TOKEN, "--counter", "nosuch", "--scenario", "x", names=("nosuch", "verifier counters")),
    case("check", TOKEN, "--counter", "cq-notary-zhixin-01", "--scenario", "buy-a-car", names=("buy-a-car", "notary")),
    case("catalogue", "--jsn", names="--jsn"),
    case("catalogue", "extra", names="extra"),
    case("counters", "--bogus", names="--bogus"),
    case("counters", "key", names="id"),
    case("counters", "key", "nosuch", names=("nosuch", "verifier counters")),
    case("counters", "key", "cq-notary-zhixin-01", "--redis-url", "localhost:6379", names="localhost:6379"),
    case(
        "counters",
        "key",
        "cq-notary-zhixin-01",
        "--redis-url",
        f"redis://127.0.0.1:{CLOSED}/0",
        names=("no key changed", "--redis-url"),
    ),
    case("counters", "revoke-key", names="id"),
    case("admin-key", "extra", names="extra"),
    case("admin-key", "--replace", "--revoke", names=("--revoke", "--replace")),
    case("admin-key", "--redis-url", f"redis://:secret@127.0.0.1:{CLOSED}/0", names=("no key changed", ":***@")),
    case("revoke", names="--type"),
    case("revoke", "--type", "driving-licence", "--province", "XX", "--licence-no", "1", names="'XX'"),
    case(*REVOKE, names=("--admin-key", "VERIFIER_ADMIN_KEY")),
    case(*REVOKE, "--url", "ftp://example.org", "--admin-key", "k", names="ftp://example.org"),
    case(*REVOKE, "--url", f"http://127.0.0.1:{CLOSED}", "--admin-key", "k", names=("127.0.0.1", "--url")),
    case(*REVOKE, "--redis-url", "localhost:6379", names="localhost:6379"),
    case(*REVOKE, "--redis-url", f"redis://127.0.0.1:{CLOSED}/0", names=("cannot reach Redis", "--redis-url")),
    case(*UNKNOWN_TYPE, "--redis-url", f"redis://127.0.0.1:{CLOSED}/0", names=("nosuch", "verifier catalogue")),
    case("serve", "--audit-url", "mysql://u:secret@db/trail", names=("--audit-url", "mysql://u:***@db/trail")),
    case("audit", names="COMMAND"),
    case("audit", "migrate", "--audit-url", "postgresql://127.0.0.1:abc/x", names=("--audit-url", "postgresql://")),
    case(
        "audit",
        "migrate",
        "--audit-url",
        f"postgresql://u:secret@127.0.0.1:{CLOSED}/x",
        names=("cannot reach the audit trail", "--audit-url", "u:***@"),
    ),
    case("audit", "migrate", "--redis-url", "redis://127.0.0.1/0", names="--redis-url"),
    case("audit", "writer", names=("--redis-url", "VERIFIER_REDIS_URL")),
    case("audit", "writer", "--redis-url", "localhost:6379", names=("--redis-url", "localhost:6379")),
    case(
        "audit", "writer", names=("VERIFIER_REDIS_URL", "localhost:6379"), env={"VERIFIER_REDIS_URL": "localhost:6379"}
    ),
    case(
        "audit",
        "writer",
        "--redis-url",
        f"redis://127.0.0.1:{CLOSED}/0",
        "--audit-url",
        "sqlite:/x",
        names=("--audit-url", "sqlite:///"),
    ),
    case(
        "audit",
        "writer",
        "--redis-url",
        f"redis://127.0.0.1:{CLOSED}/0",
        names=("VERIFIER_AUDIT_URL", "mysql://u:***@db"),
        env={"VERIFIER_AUDIT_URL": "mysql://u:secret@db"},
    ),
    case(
        "audit", "writer", "--redis-url", "redis://127.0.0.1/0", "--audit-claim-idle", "0", names="--audit-claim-idle"
    ),
    case("audit", "writer", "--redis-url", "redis://127.0.0.1/0", "--port", "1", names="--port"),
    case("report", "--by", "colour", names=("colour", "day, month")),
    case("report", "--by", "day,day", names="by"),
    case("report", "--from", "2026-13-01", names=("from", "YYYY-MM-DD")),
    case("report", "--audit-url", "mysql://db/x", names=("--audit-url", "postgresql://")),
    case("report", "--audit-url", f"postgresql://u:secret@127.0.0.1:{CLOSED}/x", names=("PostgreSQL", ":***@")),
    case("report", "--csv", "extra", names="extra"),
    case("apps", names="COMMAND"),
    case("apps", "key", names="channel"),
    case("apps", "key", "wechat", names=("wechat", "tianfu-tongban")),
    case(
        "apps",
        "key",
        "yukuaiban",
        "--redis-url",
        f"redis://127.0.0.1:{CLOSED}/0",
        names=("no key changed", "--redis-url"),
    ),
    case("bench", "--seconds", "abc", names="'abc'"),
    case("bench", "--rounds", "0", names="--rounds"),
    case("bench", "--connections", "-1", names="--connections"),
    case("bench", "--seconds", "nan", names="--seconds"),
]
COMMANDS = (
    "demo", "serve", "issuer serve", "issuer mint", "issuer rotate", "issuer withdraw", "issuer keys", "issuer jwks",
    "check", "catalogue", "counters", "counters key", "counters revoke-key", "admin-key", "revoke", "report", "apps",
    "apps key", "audit migrate", "audit writer", "bench",
)  # fmt: skip


@dataclass
class Ran:
    """What one mistake printed, and how it ended; ``shown`` is its arguments as the table shows them."""

    argv: list[str]
    code: int
    stdout: str
    stderr: str
    shown: str = ""


class Sweep:
    """Runs the cases as real processes and keeps every answer for the table."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
        self.env.update(VERIFIER_STATE_DIR=str(root / "state"), PYTHONPATH=str(ROOT))
        self.answers: dict[str, Ran] = {}  # by case id
        self.rows: list[tuple[str, Ran]] = []  # (command, answer) for the table

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> Ran:
        """``python -m verifier *argv`` with no standard input, as an operator's shell would run it."""
        done = subprocess.run(
            [sys.executable, "-m", "verifier", *argv],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Ran(argv, done.returncode, done.stdout, done.stderr)

    def write(self) -> None:
        """The table of every answer, in test-artifacts/bad-arguments.md."""
        lines = [
            "# Operator mistakes: what each command says",
            "",
            "Written by `tests/cli/test_bad_arguments.py`: every case exits 2 with this one line on standard error.",
            "",
            "| command | argument | exit | message |",
            "| --- | --- | --- | --- |",
        ]
        for command, ran in sorted(self.rows, key=lambda row: COMMANDS.index(row[0]) if row[0] in COMMANDS else -1):
            argument = ran.shown or " ".join(ran.argv[len(command.split()) :]) or "(none)"
            message = ran.stderr.strip().replace("|", "\\|")
            lines.append(f"| `{' '.join(['verifier', *command.split()])}` | `{argument}` | {ran.code} | {message} |")
        ARTIFACT.parent.mkdir(exist_ok=True)
        ARTIFACT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _command(argv: list[str]) -> str:
    """The command a command line runs: the longest of :data:`COMMANDS` it starts with."""
    for size in (2, 1):
        if " ".join(argv[:size]) in COMMANDS:
            return " ".join(argv[:size])
    return ""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    """Every case run once, a few at a time, with a port held open, a closed port and a real token at hand."""
    runner = Sweep(tmp_path_factory.mktemp("bad-arguments"))
    token = runner.run(list(MINT)).stdout.strip()
    assert token.count(".") == 2, token
    with socket.create_server(("127.0.0.1", 0)) as held:
        values = {HELD: str(held.getsockname()[1]), CLOSED: str(free_port()), TOKEN: token, FOLDER: str(runner.root)}
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {c.id: pool.submit(runner.run, [_filled(a, values) for a in c.argv], c.env) for c in CASES}
            runner.answers = {name: future.result() for name, future in futures.items()}
    for c in CASES:  # the table shows a case's arguments after its command, placeholders named, environment first
        rest = c.argv[len(_command(list(c.argv)).split()) :]
        shown = [*(f"{k}={v}" for k, v in c.env.items()), *(_filled(a, SHOWN) for a in rest)]
        runner.answers[c.id].shown = " ".join(shown) or "(none)"
    runner.rows += [(_command(ran.argv), ran) for ran in runner.answers.values()]
    yield runner
    runner.write()


def _filled(argument: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        argument = argument.replace(placeholder, value)
    return argument


def assert_refused(ran: Ran, names: tuple[str, ...]) -> None:
    """Exit 2; nothing on standard output; one line on standard error, no traceback, the command first, then
    Chinese, " / ", English; naming each of ``names``; never "listening"; no password it was given."""
    assert ran.code == 2, (ran.code, ran.stderr, ran.stdout)
    assert "Traceback" not in ran.stderr + ran.stdout
    assert "listening" not in ran.stderr + ran.stdout
    assert ran.stdout == ""
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    line = lines[0]
    prog, _, said = line.partition(": ")
    assert prog.split()[0] == "verifier", line
    assert prog.split()[1:] == ran.argv[: len(prog.split()) - 1], line  # the command, as given
    assert said.startswith("错误 error: "), line
    zh, _, en = line.partition(" / ")
    assert CHINESE.search(zh), line
    assert re.search(r"[A-Za-z]{3}", en), line
    for name in names:
        assert name in line, (name, line)
    if any(":secret@" in argument for argument in ran.argv):  # a password in a URL is never repeated
        assert "secret" not in ran.stderr, line


@pytest.mark.parametrize("mistake", CASES, ids=lambda c: c.id)
def test_a_mistake_is_said_on_one_line_in_both_languages(sweep: Sweep, mistake: Case) -> None:
    """The mistake exits 2 with one line in Chinese and English naming it and what to do, and no traceback."""
    assert_refused(sweep.answers[mistake.id], mistake.names)


def test_the_sweep_covers_every_command() -> None:
    """Every command of the command line has at least one mistake in the sweep."""
    assert {_command([a for a in c.argv if not a.startswith("{")]) for c in CASES} >= set(COMMANDS)


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subparser under it."""
    yield parser
    for action in parser._actions:  # argparse keeps its subparsers nowhere public
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def test_help_gives_every_option_its_default() -> None:
    """Every option of every command that has a default says it in its help, in both languages' help."""
    missing = []
    for parser in _parsers(build_parser()):
        formatter = parser._get_formatter()  # the help text each option is shown with
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, argparse.SUPPRESS, []):
                continue
            shown = formatter._get_help_string(action) or ""
            if "default" not in shown.lower() or not CHINESE.search(shown):
                missing.append(f"{parser.prog} {action.option_strings[0]}: {shown!r}")
    assert not missing, missing


def test_help_is_bilingual_with_its_defaults(sweep: Sweep) -> None:
    """`--help` of a command, as an operator runs it, heads its usage in both languages and states defaults."""
    for argv in (["serve"], ["issuer", "mint"], ["bench"], ["revoke"], ["audit", "writer"]):
        ran = sweep.run([*argv, "--help"])
        assert ran.code == 0, ran.stderr
        assert "用法 usage: " in ran.stdout
        assert "default" in ran.stdout
    serve = " ".join(sweep.run(["serve", "--help"]).stdout.split())
    assert "(default 8080; 1–65535; $VERIFIER_PORT)" in serve


# --- a Redis database the server does not have ------------------------------------------------------


@pytest.mark.redis
def test_serve_refuses_a_redis_database_the_server_does_not_have(sweep: Sweep, redis_server: RedisServer) -> None:
    """`serve` and `revoke` on a Redis URL naming database 99 of a Redis that has 16 exit 2 before listening,
    naming the database number."""
    url = f"redis://127.0.0.1:{redis_server.port}/99"
    for argv in (["serve", "--port", str(free_port()), "--redis-url", url], [*REVOKE, "--redis-url", url]):
        ran = sweep.run(argv)
        sweep.rows.append((_command(argv), ran))
        assert_refused(ran, ("DB index is out of range", "数据库编号", "--redis-url"))


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    """A redis-server that asks for the password "sekret", on a free port (its port)."""
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "sekret", "--save", "",
            "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as server:
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.02)
            yield port
        finally:
            server.kill()


@pytest.mark.redis
@pytest.mark.parametrize("credentials", ["", ":wrong@"], ids=["no-password", "wrong-password"])
def test_serve_refuses_a_redis_that_refuses_its_password(
    sweep: Sweep, redis_with_password: int, credentials: str
) -> None:
    """`serve` on a Redis that wants a password it was not given, or not that one, exits 2 before listening,
    saying to check the user and password (and never printing the password)."""
    argv = [
        "serve",
        "--port",
        str(free_port()),
        "--redis-url",
        f"redis://{credentials}127.0.0.1:{redis_with_password}/0",
    ]
    ran = sweep.run(argv)
    sweep.rows.append((_command(argv), ran))
    assert_refused(ran, ("refused to log in", "用户名和密码", "--redis-url"))
    assert "wrong" not in ran.stderr


@pytest.mark.redis
async def test_a_running_service_on_a_missing_database_answers_503_not_500(
    scene: Scene, redis_server: RedisServer
) -> None:
    """A service whose Redis stops having its database (it cannot refuse to start then) is not ready: /readyz
    names the database number, and a scan is a 503 problem, never a 500."""
    store = RedisStore.from_url(f"redis://127.0.0.1:{redis_server.port}/99", guarded=True)
    app = scene.app(Settings(), store=store)
    async with TestClient(TestServer(app)) as client:
        ready = await client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503, body
        assert "DB index is out of range" in body["detail"]
        assert "数据库编号" in body["detail"]
        token = scene.driving_licence("SC")
        scan = await client.post(
            "/v1/scans",
            json={"token": token, "scenario": "notary-driving-licence"},
            headers=scene.auth("cq-notary-zhixin-01"),
        )
        assert scan.status == 503, await scan.text()
        assert "Retry-After" in scan.headers
