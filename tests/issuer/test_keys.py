"""The issuer's signing keys in the state folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from verifier.core.catalogue import Catalogue
from verifier.core.token import ALGORITHMS
from verifier.core.trust import parse_trust_list
from verifier.errors import KeyStoreError, UsageError
from verifier.issuer.keys import KEY_LIFETIME, KeyStore

NOW = 1_790_000_000


@pytest.fixture
def store(catalogue: Catalogue, tmp_path: Path) -> KeyStore:
    """A key store of its own in an empty folder."""
    return KeyStore(catalogue.units.values(), tmp_path)


def test_first_use_creates_one_key_per_unit(store: KeyStore, catalogue: Catalogue) -> None:
    """The first key ring has exactly one key, numbered 1, for every issuing unit in data/."""
    ring = store.keyring(NOW)
    assert sorted(k.kid for k in ring.keys) == sorted(f"{code}-1" for code in catalogue.units)
    for key in ring.keys:
        assert key.province == catalogue.units[key.unit].province
        assert key.alg == "ES256"
        assert (key.valid_from, key.valid_until) == (NOW - 86400, NOW - 86400 + KEY_LIFETIME)


def test_private_keys_are_readable_by_the_owner_only(store: KeyStore) -> None:
    """Every private key file and the metadata holding the subject secret have mode 0600."""
    store.keyring(NOW)
    pems = list((store.directory / "keys").glob("*.pem"))
    assert len(pems) == len(store.units)
    for path in [*pems, store.directory / "keys.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_published_jwks_is_a_valid_trust_list_without_private_parts(store: KeyStore, catalogue: Catalogue) -> None:
    """jwks.json is a trust list without problems that names each key's unit and province and has no private part."""
    store.keyring(NOW)
    doc = json.loads((store.directory / "jwks.json").read_text(encoding="utf-8"))
    trust = parse_trust_list(doc)
    assert trust.problems == ()
    assert {k.unit for k in trust.keys.values()} == set(catalogue.units)
    for entry in doc["keys"]:
        assert "d" not in entry
        assert entry["use"] == "sig"
        assert entry["province"] == catalogue.units[entry["unit"]].province


def test_a_second_process_reuses_the_same_keys(store: KeyStore, catalogue: Catalogue) -> None:
    """A key store opened later on the same folder signs with the same keys instead of making new ones."""
    first = store.keyring(NOW).jwks()
    again = KeyStore(catalogue.units.values(), store.directory).keyring(NOW + 60).jwks()
    assert again == first


def test_processes_starting_at_once_agree_on_one_key_per_unit(tmp_path: Path) -> None:
    """Four processes creating keys in the same empty folder at once end with one key per unit, the same for all."""
    script = textwrap.dedent(
        """
        import json, sys
        from verifier.adapters.catalogue_files import load_catalogue
        from verifier.issuer.keys import KeyStore
        ring = KeyStore(load_catalogue().units.values()).keyring()
        print(json.dumps(sorted((k["kid"], k["x"]) for k in ring.jwks()["keys"])))
        """
    )
    env = {**os.environ, "VERIFIER_STATE_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outputs)) == 1
    kids = [kid for kid, _ in json.loads(outputs[0])]
    assert all(kid.endswith("-1") for kid in kids)
    assert len(list((tmp_path / "keys").glob("*.pem"))) == len(kids)


def test_rotation_keeps_the_old_key_and_signs_with_the_new(store: KeyStore) -> None:
    """After rotating sc-police, sc-police-2 signs, and both keys are in the JWKS and verify."""
    old = store.keyring(NOW).signing_key("sc-police", NOW)
    new = store.rotate("sc-police", now=NOW + 10)
    ring = store.keyring(NOW + 10)
    assert (old.kid, new.kid) == ("sc-police-1", "sc-police-2")
    assert ring.signing_key("sc-police", NOW + 10).kid == "sc-police-2"
    assert ring.signing_key("cq-police", NOW + 10).kid == "cq-police-1"
    trust = parse_trust_list(json.loads((store.directory / "jwks.json").read_text(encoding="utf-8")))
    for key in (old, new):
        trusted = trust.keys[key.kid]
        assert ALGORITHMS[trusted.alg].verify(b"payload", trusted.public_key, key.sign(b"payload"))


def test_a_running_store_sees_a_rotation_made_elsewhere(store: KeyStore, catalogue: Catalogue) -> None:
    """A key store that already loaded its keys picks up a key rotated by another process."""
    store.keyring(NOW)
    KeyStore(catalogue.units.values(), store.directory).rotate("cq-lib", now=NOW)
    assert store.keyring(NOW).signing_key("cq-lib", NOW).kid == "cq-lib-2"


def test_eddsa_key_signs_and_verifies(store: KeyStore) -> None:
    """An Ed25519 key is published as OKP/Ed25519 with alg EdDSA, and its signatures verify from the trust list."""
    key = store.rotate("cq-sport", alg="EdDSA", now=NOW)
    entry = next(k for k in store.keyring(NOW).jwks()["keys"] if k["kid"] == key.kid)
    assert (entry["kty"], entry["crv"], entry["alg"]) == ("OKP", "Ed25519", "EdDSA")
    trusted = store.trust_list(NOW).keys[key.kid]
    signature = key.sign(b"signing input")
    assert ALGORITHMS["EdDSA"].verify(b"signing input", trusted.public_key, signature)
    assert not ALGORITHMS["EdDSA"].verify(b"other input", trusted.public_key, signature)


def test_expired_keys_are_followed_by_new_ones(store: KeyStore) -> None:
    """When every key has expired, the next use creates key 2 of every unit."""
    store.keyring(NOW)
    later = NOW + KEY_LIFETIME + 1
    ring = store.keyring(later)
    assert ring.signing_key("sc-hrss", later).kid == "sc-hrss-2"


def test_rotating_an_unknown_unit_is_refused(store: KeyStore) -> None:
    """Rotating a unit that data/ does not name is a usage error listing the known units."""
    with pytest.raises(UsageError, match="sc-police"):
        store.rotate("sc-nobody", now=NOW)


def test_an_unknown_algorithm_is_refused(store: KeyStore) -> None:
    """Only ES256, EdDSA and SM2 keys can be made."""
    with pytest.raises(UsageError, match="ES256, EdDSA or SM2"):
        store.rotate("sc-police", alg="RS256", now=NOW)


def test_unreadable_key_state_is_a_key_store_error(store: KeyStore) -> None:
    """A damaged keys.json is reported with its path, not as a crash."""
    store.keyring(NOW)
    (store.directory / "keys.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(KeyStoreError, match=r"keys\.json"):
        KeyStore(store.units.values(), store.directory).keyring(NOW)


def test_a_withdrawn_key_is_unpublished_destroyed_and_replaced(store: KeyStore) -> None:
    """Withdrawing sc-police-1 removes it from jwks.json and keys.json, deletes its private key file, and gives
    sc-police a fresh key, sc-police-2; the other units keep theirs."""
    store.keyring(NOW)
    withdrawn = store.withdraw("sc-police-1", now=NOW)
    assert withdrawn.kid == "sc-police-1"
    assert not (store.directory / "keys" / "sc-police-1.pem").exists()
    published = json.loads((store.directory / "jwks.json").read_text(encoding="utf-8"))
    kids = {k["kid"] for k in published["keys"]}
    assert "sc-police-1" not in kids
    assert {"sc-police-2", "cq-police-1"} <= kids
    meta = json.loads((store.directory / "keys.json").read_text(encoding="utf-8"))
    assert meta["withdrawn"] == ["sc-police-1"]
    assert "sc-police-1" not in {k["kid"] for k in meta["keys"]}
    assert store.keyring(NOW).signing_key("sc-police", NOW).kid == "sc-police-2"


def test_a_withdrawn_kid_is_never_given_again(store: KeyStore, catalogue: Catalogue) -> None:
    """Withdrawing the newest key of a unit twice over never reuses a kid, in this process or another."""
    store.keyring(NOW)
    store.withdraw("cq-lib-1", now=NOW)
    store.withdraw("cq-lib-2", now=NOW)
    again = KeyStore(catalogue.units.values(), store.directory)
    assert again.rotate("cq-lib", now=NOW).kid == "cq-lib-4"
    assert sorted(k.kid for k in again.keyring(NOW).keys if k.unit == "cq-lib") == ["cq-lib-3", "cq-lib-4"]


def test_withdrawing_an_unknown_key_is_refused(store: KeyStore) -> None:
    """A kid the issuer does not hold is a usage error listing the kids it does."""
    store.keyring(NOW)
    with pytest.raises(UsageError, match="sc-police-1"):
        store.withdraw("sc-police-9", now=NOW)
