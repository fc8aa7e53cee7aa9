"""``verifier catalogue`` and ``verifier counters``: the JSON documents, the tables, and the exit code and
message when data/ is broken."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier.cli.main import main
from verifier.cli.texttable import MAX_WIDTH, width
from verifier.core.catalogue import Catalogue

DATA = Path(__file__).resolve().parents[2] / "data"
INCOMPLETE = [6, 7, 10, 14, 17, 19]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def _starts(line: str) -> list[int]:
    """Terminal columns where the cells of a table line begin (cells are two or more spaces apart)."""
    starts, column, spaces = [], 0, 2
    for ch in line:
        if ch != " " and spaces >= 2:
            starts.append(column)
        spaces = spaces + 1 if ch == " " else 0
        column += width(ch)
    return starts


def _cells(line: str, starts: list[int]) -> list[str]:
    """The cells of a table line cut at the given terminal columns."""
    cells, column, current = [""] * len(starts), 0, -1
    for ch in line:
        while current + 1 < len(starts) and column >= starts[current + 1]:
            current += 1
        cells[current] += ch
        column += width(ch)
    return [c.strip() for c in cells]


def _assert_aligned(table: list[str]) -> list[list[str]]:
    """Every line starts its cells at the rule's columns, no cell is wider than its rule segment and the header
    fills none beyond it; the rows come back whole, a wrapped cell's lines joined (a row's further lines
    leave its first cell empty)."""
    header, rule, *lines = table
    assert set(rule) <= {"─", " "}
    starts = _starts(rule)
    assert _starts(header) == starts, header
    segments = rule.split("  ")
    assert len(segments) == len(starts)
    rows: list[list[str]] = []
    for line in (header, *lines):
        assert set(_starts(line)) <= set(starts), line
        cells = _cells(line, starts)
        for j, cell in enumerate(cells):
            assert width(cell) <= width(segments[j]), (cell, segments[j])
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [whole + more for whole, more in zip(rows[-1], cells, strict=True)]
    return rows


# ---- verifier catalogue --json ----


def test_catalogue_json_has_the_nineteen_rows(capsys: pytest.CaptureFixture[str]) -> None:
    """`catalogue --json` lists the 19 rows of the list in order, with their completeness."""
    doc = _json(capsys, "catalogue", "--json")
    assert [lt["seq"] for lt in doc["licences"]] == list(range(1, 20))
    assert doc["completeness"] == {"rows": 19, "recognised": 13, "incomplete": INCOMPLETE}
    assert [lt["seq"] for lt in doc["licences"] if not lt["completeness"]["recognised"]] == INCOMPLETE
    assert doc["provinces"] == {"SC": {"code": 510000}, "CQ": {"code": 500000}}


def test_catalogue_json_resolves_names(capsys: pytest.CaptureFixture[str]) -> None:
    """A row in the JSON carries its units, channels and scenarios by code and Chinese name, and its related items."""
    (row,) = [lt for lt in _json(capsys, "catalogue", "--json")["licences"] if lt["seq"] == 1]
    assert row["name_zh"] == "中华人民共和国机动车驾驶证"
    assert row["issuing_units"] == {
        "SC": [{"code": "sc-police", "name_zh": "四川省公安厅"}],
        "CQ": [{"code": "cq-police", "name_zh": "重庆市公安局"}],
    }
    assert row["channels"] == [{"code": "jiaoguan-12123", "name_zh": "交管12123"}]
    (scenario,) = row["scenarios"]
    assert scenario["name_zh"] == "到公证机构申办机动车驾驶证公证时通过指定APP亮证"
    assert scenario["related_items"] == [{"name_zh": "机动车驾驶证公证", "item": 22}]
    assert row["pilot_scope"]["SC"] == {
        "shape": "institution-kind",
        "label_zh": "川渝两地各级公证机构",
        "kind": "notary-office",
    }


@pytest.mark.parametrize(
    ("seq", "lost", "missing"),
    [
        (6, ["pilot_scope"], ["pilot_scope"]),
        (7, ["channels"], ["channels"]),
        (
            17,
            ["channels", "issuing_units", "name_zh", "scenarios"],
            ["name_zh", "issuing_units", "channels", "scenarios"],
        ),
        (19, ["scenarios"], ["scenarios"]),
    ],
    ids=["row-6", "row-7", "row-17", "row-19"],
)
def test_catalogue_json_marks_lost_cells(
    capsys: pytest.CaptureFixture[str], seq: int, lost: list[str], missing: list[str]
) -> None:
    """A lost cell is null in the JSON and named in the row's completeness, with the rules it leaves missing."""
    (row,) = [lt for lt in _json(capsys, "catalogue", "--json")["licences"] if lt["seq"] == seq]
    assert row["completeness"]["lost"] == lost
    assert row["completeness"]["missing_rules"] == missing
    assert row["completeness"]["recognised"] is False
    for cell in lost:
        assert row[cell] is None, cell


def test_catalogue_json_keeps_chinese_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON is UTF-8 with Chinese characters as they are, not \\u escapes."""
    _, out, _ = _run(capsys, "catalogue", "--json")
    assert "中华人民共和国机动车驾驶证" in out
    assert "\\u" not in out


# ---- verifier catalogue (table) ----


def test_catalogue_table_columns_align(capsys: pytest.CaptureFixture[str]) -> None:
    """The table's Chinese and Latin cells line up under the header, one row per licence type."""
    code, out, _ = _run(capsys, "catalogue")
    assert code == 0
    table = out.split("\n\n", 1)[0].splitlines()
    header, *rows = _assert_aligned(table)
    assert header == ["序号", "code", "电子证照名称", "亮证渠道 app (--channel)", "应用场景 scenarios", "可互认"]
    assert [r[0] for r in rows] == [str(s) for s in range(1, 20)]
    assert [int(r[0]) for r in rows if r[-1] == "否 no"] == INCOMPLETE
    assert width(table[0]) == width(table[1])


def test_catalogue_table_shows_each_app_with_the_code_channel_takes(
    capsys: pytest.CaptureFixture[str], catalogue: Catalogue
) -> None:
    """Each app in the table has beside its name the code `issuer mint --channel` takes, and the apps are listed
    with their codes under it."""
    _, out, _ = _run(capsys, "catalogue")
    table, apps = out.split("\n\n")[:2]
    _, *rows = _assert_aligned(table.splitlines())
    assert rows[0][3] == "交管12123\u00a0jiaoguan-12123"
    assert rows[1][3] == "天府通办\u00a0tianfu-tongban、渝快办\u00a0yukuaiban"
    assert apps.startswith("亮证渠道 apps (--channel): ")
    for channel in catalogue.channels.values():
        assert f"{channel.code}\u00a0{channel.name_zh}" in apps.replace("\n    ", ""), channel.code


def test_catalogue_wide_adds_issuing_units_and_pilot_scope_a_row_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`catalogue --wide` adds the issuing units and the pilot scope, each row on one line."""
    _, out, _ = _run(capsys, "catalogue", "--wide")
    table = out.split("\n\n", 1)[0].splitlines()
    header, *rows = _assert_aligned(table)
    assert header[4:6] == ["签发单位", "试点范围"]
    assert len(table) == 2 + 19
    assert rows[0][4] == "四川省公安厅、重庆市公安局"


@pytest.mark.parametrize("argv", [["catalogue"], ["counters"], ["demo"], ["issuer", "keys"]], ids=" ".join)
def test_every_table_fits_120_columns(
    capsys: pytest.CaptureFixture[str], argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalogue, the counters, the demo and the issuer's keys print no line wider than 120 terminal columns
    (a Chinese character takes two)."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "state"))
    code, out, _ = _run(capsys, *argv)
    assert code == 0
    widest = max(out.splitlines(), key=width)
    assert width(widest) <= MAX_WIDTH, widest


def test_catalogue_table_ends_with_completeness(capsys: pytest.CaptureFixture[str]) -> None:
    """After the table come the completeness totals and one line per row with lost or inferred cells (wrapped
    past 120 columns, its further lines indented)."""
    _, out, _ = _run(capsys, "catalogue")
    tail = out.rstrip("\n").split("\n\n")[-1].replace("\n      ", " ").splitlines()
    assert tail[0].startswith("完整度 completeness: 13/19 rows fully specified")
    lines = [
        re.fullmatch(r"  序号 +(\d+) \(([a-z0-9-]+)\): (.+) — (not yet recognised|recognised)", t) for t in tail[1:]
    ]
    assert all(lines), tail
    assert [int(m[1]) for m in lines if m] == [6, 7, 10, 13, 14, 16, 17, 19]
    assert [int(m[1]) for m in lines if m and m[4] == "not yet recognised"] == INCOMPLETE
    assert tail[-1] == "  序号 19 (mineral): lost: scenarios — not yet recognised"


# ---- verifier counters ----


def test_counters_json_lists_both_provinces_with_kinds(
    capsys: pytest.CaptureFixture[str], catalogue: Catalogue
) -> None:
    """`counters --json` lists every registered counter, in both provinces, with its institution's kinds."""
    counters = _json(capsys, "counters", "--json")["counters"]
    assert sorted(c["id"] for c in counters) == sorted(catalogue.counters)
    assert {c["province"] for c in counters} == {"SC", "CQ"}
    for c in counters:
        assert c["kinds"], c["id"]
        assert set(c["kinds"]) <= set(catalogue.kinds), c["id"]
        assert c["institution"]["name_zh"] == catalogue.counters[c["id"]].institution.name_zh
    (notary,) = [c for c in counters if c["id"] == "cq-notary-yubei-01"]
    assert notary["kinds"] == ["notary-office"]
    assert notary["scenarios"] == ["notary-driving-licence"]


def test_counters_table_lists_every_counter(capsys: pytest.CaptureFixture[str], catalogue: Catalogue) -> None:
    """The counters table is aligned, has one line per counter and ends with their number."""
    code, out, _ = _run(capsys, "counters")
    assert code == 0
    table, total = out.rstrip("\n").split("\n\n")
    _, *rows = _assert_aligned(table.splitlines())
    assert [r[0] for r in rows] == list(catalogue.counters)
    assert total == f"共 {len(catalogue.counters)} 个窗口 / {len(catalogue.counters)} counters."


# ---- broken data ----


@pytest.fixture
def broken_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of data/ whose counter cq-library-01 names an unknown institution, set as VERIFIER_DATA_DIR."""
    directory = Path(shutil.copytree(DATA, tmp_path / "data"))
    path = directory / "counters.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('institution = "cq-library"\n') == 1
    path.write_text(text.replace('institution = "cq-library"\n', 'institution = "cq-libary"\n'), encoding="utf-8")
    monkeypatch.setenv("VERIFIER_DATA_DIR", str(directory))
    return directory


@pytest.mark.parametrize(
    "argv",
    [["catalogue"], ["catalogue", "--json"], ["counters"], ["counters", "--json"]],
    ids=" ".join,
)
def test_broken_data_exits_2_naming_file_and_field(
    capsys: pytest.CaptureFixture[str], broken_data: Path, argv: list[str]
) -> None:
    """With broken data the command exits 2, prints nothing on stdout and names file, entry and field, no traceback."""
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert "data/counters.toml: counter (cq-library-01), field institution: unknown institution 'cq-libary'" in err
    assert "Traceback" not in err


def test_data_not_in_utf8_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data file saved as GBK makes the command exit 2 naming the file, without a traceback."""
    directory = Path(shutil.copytree(DATA, tmp_path / "data"))
    path = directory / "licence-types.toml"
    path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
    monkeypatch.setenv("VERIFIER_DATA_DIR", str(directory))
    code, out, err = _run(capsys, "catalogue", "--json")
    assert code == 2
    assert out == ""
    assert "data/licence-types.toml: not UTF-8" in err
    assert "Traceback" not in err


# ---- python -m verifier ----


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VERIFIER_DATA_DIR"}
    return {**env, **extra}


def test_python_m_verifier_catalogue_json(tmp_path: Path) -> None:
    """`python -m verifier catalogue --json` run from any folder prints the catalogue and exits 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "verifier", "catalogue", "--json"],
        capture_output=True,
        cwd=tmp_path,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    doc = json.loads(proc.stdout.decode("utf-8"))
    assert len(doc["licences"]) == 19
    assert doc["completeness"]["incomplete"] == INCOMPLETE


def test_python_m_verifier_with_broken_data(broken_data: Path) -> None:
    """`python -m verifier catalogue` on broken data exits 2 with the problem and without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "verifier", "catalogue"],
        capture_output=True,
        env=_env(VERIFIER_DATA_DIR=str(broken_data)),
        timeout=60,
        check=False,
    )
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2
    assert "data/counters.toml" in err
    assert "field institution" in err
    assert "Traceback" not in err
