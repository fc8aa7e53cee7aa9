"""``verifier issuer …`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from verifier.adapters.catalogue_files import load_catalogue
from verifier.cli.main import main
from verifier.core.token import ALGORITHMS, parse
from verifier.core.trust import parse_trust_list


@pytest.fixture(autouse=True)
def _own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each command test starts from an empty state folder, so rotations stay here."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def test_a_channel_not_allowed_exits_2_naming_the_allowed_one(capsys: pytest.CaptureFixture[str]) -> None:
    """Minting a driving licence for 渝快办 exits 2, and stderr names jiaoguan-12123."""
    assert main(["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "yukuaiban"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "jiaoguan-12123" in err


def test_a_row_whose_channels_were_lost_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Minting row 7 exits 2 and says its channels were lost."""
    assert main(["issuer", "mint", "--type", "vet-drug-production", "--province", "CQ", "--channel", "yukuaiban"]) == 2
    assert "lost its channels" in capsys.readouterr().err


def test_mint_json_gives_a_token_that_verifies_with_the_printed_jwks(capsys: pytest.CaptureFixture[str]) -> None:
    """`mint --json` prints token, claims, expiry, kid and size; the token verifies with `issuer jwks`."""
    argv = ["issuer", "mint", "--type", "sports-instructor", "--province", "CQ", "--channel", "yukuaiban"]
    assert main([*argv, "--holder", "欧阳娜娜", "--ttl", "60", "--attr", "lvl=2", "--json"]) == 0
    minted = json.loads(capsys.readouterr().out)
    assert minted["claims"]["hn"] == "欧阳**"
    assert minted["claims"]["lvl"] == "2"
    assert minted["expires_at"] == minted["claims"]["iat"] + 60
    assert (minted["kid"], minted["size"]) == ("cq-sport-1", len(minted["token"]))
    assert main(["issuer", "jwks"]) == 0
    trust = parse_trust_list(json.loads(capsys.readouterr().out))
    parsed = parse(minted["token"])
    key = trust.keys[minted["kid"]]
    assert ALGORITHMS[key.alg].verify(parsed.signing_input, key.public_key, parsed.signature)


def test_mint_prints_the_bare_token(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json, mint prints only the compact token on one line."""
    assert main(["issuer", "mint", "--type", "feed-additive", "--province", "SC", "--channel", "tianfu-tongban"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    seq = parse(out.strip()).claims["lt"]
    assert seq == load_catalogue().licences["feed-additive"].seq == 9


def test_a_licence_number_not_of_its_kind_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A 20-character driving licence number exits 2, and stderr says a citizen ID number is wanted; nothing
    is printed. A real one, 18 characters with its check character, mints."""
    argv = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    assert main([*argv, "--licence-no", "5" * 20]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "a driving-licence number is an 18-character citizen ID number with its check character" in err
    assert main([*argv, "--licence-no", "510104199001011230", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["claims"]["no"] == "510104199001011230"


def test_rotate_then_keys_shows_the_new_key_signing(capsys: pytest.CaptureFixture[str]) -> None:
    """After `issuer rotate --unit cq-lib --alg EdDSA`, `issuer keys` lists cq-lib-1 and cq-lib-2; the latter signs."""
    assert main(["issuer", "rotate", "--unit", "cq-lib", "--alg", "EdDSA"]) == 0
    assert "cq-lib-2" in capsys.readouterr().out
    assert main(["issuer", "keys"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["cq-lib-2"].split()[3:4] == ["EdDSA"]
    assert lines["cq-lib-2"].endswith("yes")
    assert not lines["cq-lib-1"].endswith("yes")


def test_rotating_an_unknown_unit_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An issuing unit that data/ does not name is a usage error."""
    assert main(["issuer", "rotate", "--unit", "sc-nobody"]) == 2
    assert "sc-nobody" in capsys.readouterr().err


def test_mint_qr_writes_a_png_that_decodes_to_the_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`mint --qr FILE.png` writes a version-16 (or smaller) QR code that reads back as the printed token."""
    path = tmp_path / "token.png"
    argv = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    argv += ["--qr", str(path)]
    assert main([*argv, "--holder", "欧阳娜娜"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    image = Image.open(path)
    [barcode] = zxingcpp.read_barcodes(image)
    assert (barcode.text, barcode.ec_level) == (token, "M")
    # Written at 4 pixels a module with a 4-module border: 17 + 4 * version modules a side.
    version = (image.size[0] // 4 - 8 - 17) // 4
    assert image.size[0] == image.size[1] == (17 + 4 * version + 8) * 4
    assert 1 <= version <= 16
    assert f"QR code version {version}-M written to {path}" in err
