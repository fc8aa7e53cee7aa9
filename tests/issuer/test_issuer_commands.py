"""``verifier issuer withdraw`` and ``verifier issuer jwks --province`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifier.cli.main import main


@pytest.fixture(autouse=True)
def _own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test withdraws keys in an empty state folder of its own, never the session's."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _published(capsys: pytest.CaptureFixture[str], *options: str) -> set[str]:
    """The kids `verifier issuer jwks` prints."""
    assert main(["issuer", "jwks", *options]) == 0
    return {k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]}


def test_withdraw_unpublishes_the_key_and_says_what_signs_now(capsys: pytest.CaptureFixture[str]) -> None:
    """`issuer withdraw --kid sc-police-1` exits 0 saying, in Chinese and English, that sc-police-2 signs now;
    the key is gone from the printed lists."""
    assert "sc-police-1" in _published(capsys)
    assert main(["issuer", "withdraw", "--kid", "sc-police-1"]) == 0
    out = capsys.readouterr().out
    assert "已撤回" in out
    assert "withdrawn" in out
    assert "sc-police-2" in out
    assert "sc-police-1" not in _published(capsys)
    assert "sc-police-2" in _published(capsys, "--province", "SC")


def test_withdrawing_an_unknown_kid_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown kid is a usage error in both languages: exit 2, nothing withdrawn."""
    before = _published(capsys)
    assert main(["issuer", "withdraw", "--kid", "sc-nobody-1"]) == 2
    err = capsys.readouterr().err
    assert "未知的密钥" in err
    assert "unknown key 'sc-nobody-1'" in err
    assert _published(capsys) == before


@pytest.mark.parametrize(("province", "other"), [("SC", "CQ"), ("CQ", "SC")])
def test_jwks_of_one_province(capsys: pytest.CaptureFixture[str], province: str, other: str) -> None:
    """`issuer jwks --province P` prints that province's keys only, and together the two make the whole list."""
    assert main(["issuer", "jwks", "--province", province]) == 0
    keys = json.loads(capsys.readouterr().out)["keys"]
    assert keys
    assert {k["province"] for k in keys} == {province}
    assert {k["kid"] for k in keys} | _published(capsys, "--province", other) == _published(capsys)
