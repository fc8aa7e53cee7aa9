"""The mock issuer with SM2 keys: a unit rotated to SM2 publishes the key in its JWKS and mints SM2 tokens,
on the command line and over HTTP, and the verifier accepts them through the published key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.helpers import ClientFactory
from verifier.cli.main import main
from verifier.core.catalogue import Catalogue
from verifier.core.sm2 import Sm2PrivateKey
from verifier.core.token import ALGORITHMS, parse
from verifier.core.trust import parse_trust_list
from verifier.errors import KeyStoreError
from verifier.issuer.keys import KeyStore
from verifier.issuer.web import create_issuer_app

NOW = 1_790_000_000


def test_rotate_to_sm2_then_mint_and_check_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`issuer rotate --unit sc-police --alg SM2` adds sc-police-2 (SM2), which `issuer keys` shows signing and
    `issuer jwks` publishes as {kty EC, crv SM2}; a driving licence minted next is SM2-signed, and
    `verifier check` accepts it at a Chongqing notary office."""
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "state"))
    assert main(["issuer", "rotate", "--unit", "sc-police", "--alg", "SM2"]) == 0
    assert "sc-police-2 (SM2) now signs for sc-police" in capsys.readouterr().out
    assert main(["issuer", "keys"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["sc-police-2"].split()[3] == "SM2"
    assert lines["sc-police-2"].endswith("yes")
    assert main(["issuer", "jwks"]) == 0
    jwks = json.loads(capsys.readouterr().out)
    [entry] = [k for k in jwks["keys"] if k["kid"] == "sc-police-2"]
    assert {k: entry[k] for k in ("kty", "crv", "alg", "province", "unit")} == {
        "kty": "EC",
        "crv": "SM2",
        "alg": "SM2",
        "province": "SC",
        "unit": "sc-police",
    }
    assert "d" not in entry
    argv = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    assert parse(token).header == {"alg": "SM2", "kid": "sc-police-2", "typ": "cylp"}
    assert main(["check", token, "--counter", "cq-notary-zhixin-01", "--scenario", "notary-driving-licence"]) == 0
    assert "SIGNATURE_INVALID" not in capsys.readouterr().out


def test_an_sm2_private_key_is_kept_as_a_jwk_for_its_owner_only(catalogue: Catalogue, tmp_path: Path) -> None:
    """The SM2 key is written to keys/<kid>.jwk (mode 0600, with its d); another process reads it back and
    its signatures verify with the published key."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    key = store.rotate("cq-lib", alg="SM2", now=NOW)
    path = tmp_path / "keys" / f"{key.kid}.jwk"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(path.read_text(encoding="utf-8"))) == {"kty", "crv", "x", "y", "d"}
    again = KeyStore(catalogue.units.values(), tmp_path).keyring(NOW).signing_key("cq-lib", NOW)
    assert isinstance(again.private_key, Sm2PrivateKey)
    assert again.private_key == key.private_key
    published = store.trust_list(NOW).keys[key.kid]
    assert ALGORITHMS["SM2"].verify(b"data", published.public_key, again.sign(b"data"))


def test_a_withdrawn_sm2_key_is_unpublished_and_its_file_destroyed(catalogue: Catalogue, tmp_path: Path) -> None:
    """Withdrawing an SM2 key removes it from the JWKS and deletes its keys/<kid>.jwk; the unit signs with
    its older key again."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    key = store.rotate("cq-lib", alg="SM2", now=NOW)
    path = tmp_path / "keys" / f"{key.kid}.jwk"
    assert path.exists()
    store.withdraw(key.kid, now=NOW)
    assert not path.exists()
    assert key.kid not in store.trust_list(NOW).keys
    assert store.keyring(NOW).signing_key("cq-lib", NOW).alg == "ES256"


def test_a_damaged_sm2_key_file_is_a_key_store_error(catalogue: Catalogue, tmp_path: Path) -> None:
    """An SM2 key file that is not a JWK any more is reported with the state's path, not as a crash."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    key = store.rotate("cq-lib", alg="SM2", now=NOW)
    (tmp_path / "keys" / f"{key.kid}.jwk").write_text('{"kty": "EC", "crv": "SM2", "x": "AA"}', encoding="utf-8")
    with pytest.raises(KeyStoreError, match=r"keys\.json: unreadable key state"):
        KeyStore(catalogue.units.values(), tmp_path).keyring(NOW)


async def test_the_issuer_publishes_and_mints_with_its_sm2_key(
    aiohttp_client: ClientFactory, catalogue: Catalogue, tmp_path: Path
) -> None:
    """Over HTTP: the JWKS holds the unit's SM2 key, and a presentation of that unit is an SM2 token that
    verifies with the published key."""
    store = KeyStore(catalogue.units.values(), tmp_path)
    store.rotate("cq-culture", alg="SM2", now=NOW)
    client = await aiohttp_client(create_issuer_app(catalogue, keys=store, clock=lambda: NOW))
    trust = parse_trust_list(await (await client.get("/.well-known/jwks.json")).json())
    assert trust.problems == ()
    assert trust.keys["cq-culture-2"].alg == "SM2"
    body = {"type": "tour-guide", "province": "CQ", "channel": "yukuaiban"}
    response = await client.post("/v1/presentations", json=body)
    assert response.status == 200, await response.text()
    parsed = parse((await response.json())["token"])
    assert parsed.header["alg"] == "SM2"
    key = trust.keys[parsed.header["kid"]]
    assert ALGORITHMS[key.alg].verify(parsed.signing_input, key.public_key, parsed.signature)
