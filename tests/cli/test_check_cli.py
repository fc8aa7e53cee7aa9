"""``verifier check``: the offline decision on the command line, fed by ``verifier issuer mint``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.forge import segment
from verifier.cli.main import main
from verifier.core.catalogue import Catalogue
from verifier.core.reasons import MESSAGES
from verifier.issuer.keys import KeyStore
from verifier.issuer.mint import mint

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = [sys.executable, "-m", "verifier"]


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    return {**env, "VERIFIER_STATE_DIR": str(state), "PYTHONIOENCODING": "utf-8"}


def _pipe(state: Path, mint_args: list[str], check_args: list[str]) -> tuple[int, str, str]:
    """``verifier issuer mint … | verifier check - …`` as two processes joined by a real pipe."""
    env = _env(state)
    with subprocess.Popen(
        [*VERIFIER, "issuer", "mint", *mint_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT
    ) as minter:
        assert minter.stdout is not None
        checker = subprocess.run(
            [*VERIFIER, "check", "-", *check_args],
            stdin=minter.stdout,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        minter.stdout.close()
        assert minter.wait(timeout=60) == 0, minter.stderr.read().decode() if minter.stderr else ""
    return checker.returncode, checker.stdout, checker.stderr


def _run(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VERIFIER, *argv], capture_output=True, text=True, env=_env(state), cwd=ROOT, timeout=60, check=False
    )


SC_DRIVING = ["--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
SC_LIBRARY = ["--type", "library-card", "--province", "SC", "--channel", "tianfu-tongban"]


def test_minted_token_piped_to_check_is_accepted(tmp_path: Path) -> None:
    """A Sichuan driving licence minted in a fresh state folder and piped to check at a Chongqing
    notary office is accepted: exit 0 and the decision object."""
    state = tmp_path / "state"
    code, out, err = _pipe(
        state, SC_DRIVING, ["--counter", "cq-notary-zhixin-01", "--scenario", "notary-driving-licence", "--json"]
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["decision"] == "accepted"
    assert document["reasons"] == []
    assert document["cached"] is False
    licence = document["licence"]
    assert (licence["type"], licence["issuing_province"], licence["issuing_unit"]["code"]) == (
        "driving-licence",
        "SC",
        "sc-police",
    )
    assert licence["holder"] == "张*"
    assert "*" in licence["licence_no"]
    # The first command created the keys the second one trusted.
    assert (state / "jwks.json").is_file()
    assert len(json.loads((state / "jwks.json").read_text(encoding="utf-8"))["keys"]) >= 19


def test_rejected_token_exits_1_with_its_reason(tmp_path: Path) -> None:
    """A Sichuan library card checked at 重庆市渝中区图书馆 exits 1 and names OUT_OF_PILOT_SCOPE,
    in the JSON decision and in the text a clerk reads."""
    state = tmp_path / "state"
    check = ["--counter", "cq-yuzhong-library-01", "--scenario", "library-borrowing"]
    code, out, err = _pipe(state, SC_LIBRARY, [*check, "--json"])
    assert code == 1, err
    document = json.loads(out)
    assert document["decision"] == "rejected"
    assert [r["code"] for r in document["reasons"]] == ["OUT_OF_PILOT_SCOPE"]
    assert document["reasons"][0]["message_zh"] == MESSAGES["OUT_OF_PILOT_SCOPE"][0]
    code, out, err = _pipe(state, SC_LIBRARY, check)
    assert code == 1, err
    assert out.splitlines()[0] == "不通过 REJECTED"
    assert "OUT_OF_PILOT_SCOPE" in out
    assert MESSAGES["OUT_OF_PILOT_SCOPE"][0] in out


def test_same_token_accepted_in_text_form(tmp_path: Path) -> None:
    """Without --json, check prints a readable verdict naming the licence and exits 0."""
    code, out, err = _pipe(
        tmp_path / "state", SC_LIBRARY, ["--counter", "cq-library-01", "--scenario", "library-borrowing"]
    )
    assert code == 0, err
    assert out.splitlines()[0] == "通过 ACCEPTED"
    assert "图书馆借书证" in out


def test_forged_token_is_rejected_on_the_command_line(tmp_path: Path) -> None:
    """A token whose payload was altered after minting exits 1 with SIGNATURE_INVALID and no licence."""
    state = tmp_path / "state"
    minted = _run(state, "issuer", "mint", *SC_DRIVING, "--json")
    assert minted.returncode == 0, minted.stderr
    head, _, sig = json.loads(minted.stdout)["token"].split(".")
    claims = json.loads(minted.stdout)["claims"]
    forged = f"{head}.{segment({**claims, 'cls': 'A1'})}.{sig}"
    done = _run(
        state, "check", forged, "--counter", "cq-notary-zhixin-01", "--scenario", "notary-driving-licence", "--json"
    )
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert [r["code"] for r in document["reasons"]] == ["SIGNATURE_INVALID"]
    assert document["licence"] is None


@pytest.mark.parametrize(
    ("counter", "scenario", "named"),
    [
        ("cq-notary-nowhere-01", "notary-driving-licence", "unknown counter 'cq-notary-nowhere-01'"),
        ("cq-notary-zhixin-01", "buy-a-car", "unknown scenario 'buy-a-car'"),
    ],
    ids=["unknown-counter", "unknown-scenario"],
)
def test_unknown_counter_or_scenario_exits_2(tmp_path: Path, counter: str, scenario: str, named: str) -> None:
    """An unknown counter or scenario is a usage error: exit 2, a message naming it, no decision."""
    state = tmp_path / "state"
    token = _run(state, "issuer", "mint", *SC_DRIVING).stdout.strip()
    done = _run(state, "check", token, "--counter", counter, "--scenario", scenario, "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert named in done.stderr
    assert done.stderr.startswith("verifier check: 错误 error: ")
    assert done.stderr.count("\n") == 1


def test_unknown_scenario_message_lists_what_the_counter_handles(tmp_path: Path) -> None:
    """The message for an unknown scenario says which scenarios the counter does handle."""
    done = _run(tmp_path / "state", "check", "x.y.z", "--counter", "sc-employment-01", "--scenario", "nothing")
    assert done.returncode == 2
    assert "unemployment-registration, employment-subsidy" in done.stderr


def test_missing_arguments_exit_2(tmp_path: Path) -> None:
    """check without --scenario is an argument error: exit 2."""
    done = _run(tmp_path / "state", "check", "x.y.z", "--counter", "cq-notary-zhixin-01")
    assert done.returncode == 2
    assert "--scenario" in done.stderr


# --- in process ----------------------------------------------------------------------------------


def _in_process_token(catalogue: Catalogue, **options: Any) -> str:
    """A token signed with the session's own keys, which `check` trusts; minted now, as check reads the clock."""
    now = time.time()
    ring = KeyStore(catalogue.units.values()).keyring(now)
    return mint(catalogue, ring, now=now, **options).token


def test_check_in_process_accepts(catalogue: Catalogue, capsys: pytest.CaptureFixture[str]) -> None:
    """verifier.cli.main.main(["check", …]) returns 0 and prints the accepted decision of a Chongqing
    driving licence at a Sichuan notary office."""
    token = _in_process_token(catalogue, licence_type="driving-licence", province="CQ", channel="jiaoguan-12123")
    code = main(["check", token, "--counter", "sc-notary-shudu-01", "--scenario", "notary-driving-licence", "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["decision"] == "accepted"
    assert document["licence"]["issuing_province"] == "CQ"
    assert document["scan_id"] is None
    assert document["checked_at"].endswith("Z")


def test_check_in_process_reads_stdin(
    catalogue: Catalogue, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check - reads the token from standard input, trailing newline and all, and rejects a
    licence shown at a counter not registered for the business with exit 1."""
    token = _in_process_token(catalogue, licence_type="social-security", province="SC", channel="tianfu-tongban")
    monkeypatch.setattr(sys, "stdin", io.StringIO(token + "\n"))
    code = main(["check", "-", "--counter", "cq-social-insurance-01", "--scenario", "unemployment-registration"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "SCENARIO_NOT_REGISTERED" in out


def test_check_in_process_unknown_counter(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown counter returns 2 with the message on standard error and nothing on standard output."""
    code = main(["check", "x.y.z", "--counter", "nowhere", "--scenario", "library-borrowing"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert "unknown counter 'nowhere'" in err
