"""The demo (verifier.cli.demo): its hand-built token must be in the current token format, so that the story's
"app not designated" step is rejected for the channel and for nothing else; and its closing report of the audit
trail adds up to the story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.forge import NOW, codes, make_kit
from verifier.adapters.paths import schema_dir
from verifier.cli.demo import _foreign_channel_token
from verifier.cli.main import main
from verifier.core.catalogue import Catalogue
from verifier.core.token import parse


def test_the_foreign_channel_token_is_refused_only_for_its_channel(catalogue: Catalogue, tmp_path: Path) -> None:
    """A Sichuan lawyer's licence shown through 交管12123 is rejected at a Chongqing justice bureau for
    CHANNEL_NOT_ALLOWED alone, and its claims match the token schema."""
    kit = make_kit(catalogue, tmp_path)
    token = _foreign_channel_token(catalogue, kit.keyring, NOW)
    decision = kit.decide(token, "cq-justice-bureau-01", "justice-admin")
    assert codes(decision) == {"CHANNEL_NOT_ALLOWED"}
    assert decision.licence is not None
    assert decision.licence.type == "lawyer-licence"
    schema = json.loads((schema_dir() / "presentation-token.schema.json").read_text(encoding="utf-8"))
    parsed = parse(token)
    assert list(Draft202012Validator(schema).iter_errors({"header": parsed.header, "claims": parsed.claims})) == []


def test_the_demo_ends_with_the_trails_report_of_its_own_scans(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's answers are written to an audit trail on a temporary file, and its report by licence type adds up
    to the story's statistics: every answer, re-scans apart; the state folder gets no trail of it."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path))
    assert main(["demo", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    report, stats = document["report"], document["stats"]
    assert report["by"] == ["type"]
    total = report["total"]
    assert (total["answers"], total["accepted"], total["rejected"]) == (
        len(document["scans"]),
        stats["accepted"],
        stats["rejected"],
    )
    assert total["first_scans"] == sum(1 for scan in document["scans"] if not scan["cached"])
    for measure in ("answers", "first_scans", "accepted", "rejected"):
        assert sum(row[measure] for row in report["rows"]) == total[measure]
    assert {row["type"] for row in report["rows"]} == {scan["licence"]["type"] for scan in document["scans"]}
    assert not (tmp_path / "audit.sqlite3").exists()
    assert main(["demo"]) == 0
    table = capsys.readouterr().out.split("核验留痕报表")[1].splitlines()
    assert table[-1].split()[:3] == ["合计", "total", str(total["answers"])]
    assert any(line.startswith("中华人民共和国机动车驾驶证") for line in table)
