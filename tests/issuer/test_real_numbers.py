"""Real licences fit their QR code: every licence type the issuer can sign, in both provinces, with a real
Chinese name and a real-format number of its kind, signed with ES256 and with SM2, comes out of
`verifier issuer mint --qr` as a PNG that an independent decoder (zxing-cpp) reads back as the token — a
version-16 code or smaller at level M — and the verifier takes it as of the issuer's shape, and accepts
it at a counter in its pilot scope.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from verifier.adapters.catalogue_files import load_catalogue
from verifier.cli.main import main
from verifier.core.catalogue import PROVINCES, Catalogue
from verifier.core.decide import decide
from verifier.core.shape import number_problem
from verifier.core.token import QR_VERSION, parse
from verifier.core.trust import TrustList
from verifier.issuer.keys import KeyStore
from verifier.issuer.mint import allowed_channels, citizen_id

# Real Chinese names: compound surnames among them, and organisations' registered names at full length.
PEOPLE = ["王秀英", "欧阳娜娜", "李建国", "诸葛明远", "张伟", "司马相如", "刘德华", "上官婉儿"]
ORGANISATIONS = ["四川新希望六和饲料股份有限公司", "重庆市渝中区国际旅行社有限责任公司", "成都天府矿业开发集团有限公司"]
# Real-format numbers of each kind: citizen IDs, unified social credit codes, and the types' own digits.
CREDIT_CODES = ["91510100MA61R8XK49", "91500103MA5U7TQ02X", "915100002018369542"]


def _number(catalogue: Catalogue, licence_type: str, province: str, serial: int) -> str:
    """A real-format number of the type's kind, different for each serial."""
    kind = catalogue.licences[licence_type].number
    assert kind is not None
    if kind.kind == "citizen-id":
        return citizen_id(7_000_000 + serial, province)
    if kind.kind == "uscc":
        code = CREDIT_CODES[serial % len(CREDIT_CODES)]
        assert number_problem(kind, code) is None, code
        return code
    return f"{'51' if province == 'SC' else '50'}{serial:0{kind.length - 2}d}"


def _cases() -> list[tuple[str, str, str]]:
    cat = load_catalogue()
    return [
        (lt.code, province, allowed_channels(cat, lt, province)[0])
        for lt in cat.by_seq()
        if lt.mintable
        for province in PROVINCES
    ]


CASES = _cases()


@pytest.fixture(scope="module")
def states(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two state folders: every unit signing with ES256, and every unit rotated to SM2."""
    folders = {alg: tmp_path_factory.mktemp(f"state-{alg}") for alg in ("ES256", "SM2")}
    KeyStore(catalogue.units.values(), folders["ES256"]).keyring()
    sm2 = KeyStore(catalogue.units.values(), folders["SM2"])
    for unit in catalogue.units:
        sm2.rotate(unit, alg="SM2")
    return folders


def _accepted_somewhere(catalogue: Catalogue, trust: TrustList, token: str, licence_type: str) -> list[str]:
    """The reasons at the first counter and business that accept ``token`` ([] then), or at the last tried."""
    reasons: list[str] = ["no counter tried"]
    for counter in catalogue.counters.values():
        for scenario in catalogue.licences[licence_type].scenarios or catalogue.scenarios:  # a row may lose them
            decision = decide(
                token, trust=trust, catalogue=catalogue, counter=counter, scenario=scenario, now=time.time()
            )
            reasons = [r.code for r in decision.reasons]
            if not reasons:
                return []
    return reasons


Minter = Callable[[str, list[str]], tuple[dict[str, Any], Any]]


@pytest.fixture
def mint_with_qr(
    states: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Minter:
    """Run `verifier issuer mint … --qr FILE.png --json` in the state folder of an algorithm; answer what it
    printed and what zxing-cpp read in the PNG."""

    def run(alg: str, argv: list[str]) -> tuple[dict[str, Any], Any]:
        monkeypatch.setenv("VERIFIER_STATE_DIR", str(states[alg]))
        png = tmp_path / "code.png"
        assert main(["issuer", "mint", *argv, "--qr", str(png), "--json"]) == 0
        found = zxingcpp.read_barcodes(Image.open(png), formats=zxingcpp.barcode_formats_from_str("QRCode"))
        assert len({r.text for r in found}) == 1, [r.text for r in found]  # one code, if maybe found twice
        return json.loads(capsys.readouterr().out), found[0]

    return run


@pytest.mark.parametrize("alg", ["ES256", "SM2"])
@pytest.mark.parametrize("case", CASES, ids=["-".join(c[:2]) for c in CASES])
def test_a_real_licence_fits_one_qr_code_that_a_decoder_reads(
    catalogue: Catalogue, states: dict[str, Path], mint_with_qr: Minter, alg: str, case: tuple[str, str, str]
) -> None:
    """`issuer mint --qr` writes the real licence as a PNG that zxing-cpp reads back as the printed token,
    at level M and version 16 or less; the token is of the issuer's shape, signed with ``alg``, and a
    counter in its pilot scope accepts it (a row whose rules the source lost is refused for that alone)."""
    licence_type, province, channel = case
    serial = CASES.index(case)
    lt = catalogue.licences[licence_type]
    names = PEOPLE if lt.holder == "person" else ORGANISATIONS
    number = _number(catalogue, licence_type, province, serial)
    argv = ["--type", licence_type, "--province", province, "--channel", channel]
    minted, read = mint_with_qr(alg, [*argv, "--holder", names[serial % len(names)], "--licence-no", number])
    assert minted["claims"]["no"] == number
    assert read.text == minted["token"]
    assert (read.ec_level, int(read.extra["Version"]) <= QR_VERSION) == ("M", True), read.extra
    assert parse(minted["token"]).header["alg"] == alg
    trust = KeyStore(catalogue.units.values(), states[alg]).trust_list()
    reasons = _accepted_somewhere(catalogue, trust, minted["token"], licence_type)
    if lt.recognised:
        assert reasons == [], reasons
    else:
        assert "RULES_INCOMPLETE" in reasons
        assert not {"TOKEN_SHAPE_INVALID", "SIGNATURE_INVALID", "CLAIMS_INVALID"} & set(reasons)


def test_every_mintable_type_and_both_provinces_are_covered(catalogue: Catalogue) -> None:
    """The table has both provinces of every type the issuer can sign, persons' and organisations' alike."""
    assert {c[0] for c in CASES} == {lt.code for lt in catalogue.by_seq() if lt.mintable}
    assert len(CASES) == 2 * len({c[0] for c in CASES})
    assert {catalogue.licences[c[0]].holder for c in CASES} == {"person", "organisation"}
