"""The mock issuer's signing keys: one or more per issuing unit, kept in the git-ignored state folder.

    <state>/keys/<kid>.pem   private key, PKCS#8 PEM, mode 0600 (ES256, EdDSA)
    <state>/keys/<kid>.jwk   private key, JWK with its d, mode 0600 (SM2: cryptography cannot write SM2 PEM)
    <state>/keys.json        metadata of every key, the kids withdrawn, and the secret behind pseudonymous subjects
    <state>/jwks.json        the public trust list, in the format of :mod:`verifier.core.trust`
    <state>/keys.lock        held while keys are created, so two processes starting at once agree

Every unit gets a key the first time keys are needed; :meth:`KeyStore.rotate` adds a newer one while
the old stays valid; :meth:`KeyStore.withdraw` stops publishing a compromised key and destroys it.
Files are written to a temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.exceptions import InvalidKeyError

from verifier.adapters.paths import state_dir, write_atomic
from verifier.core.catalogue import IssuingUnit
from verifier.core.sm2 import Sm2PrivateKey
from verifier.core.token import ALGORITHMS
from verifier.core.trust import TrustedKey, TrustList, parse_trust_list, public_jwk
from verifier.errors import KeyStoreError, UsageError

DEFAULT_ALG = "ES256"
KEY_LIFETIME = 365 * 86400  # seconds a new key is valid for
BACKDATE = 86400  # a new key is valid from a day ago, so a clock a little behind still accepts it


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One private key of one issuing unit, pinned to one algorithm and validity window."""

    kid: str
    unit: str
    province: str
    alg: str
    valid_from: int
    valid_until: int
    private_key: Any

    @property
    def serial(self) -> int:
        """The ``n`` of ``<unit>-<n>``: higher is newer."""
        return int(self.kid.rsplit("-", 1)[1])

    def valid_at(self, now: float) -> bool:
        """Whether the key may sign at ``now``."""
        return self.valid_from <= now < self.valid_until

    def sign(self, data: bytes) -> bytes:
        """The raw JWS signature of ``data`` (r‖s for ES256 and SM2)."""
        signature: bytes = ALGORITHMS[self.alg].sign(data, self.private_key)
        return signature

    def public(self) -> TrustedKey:
        """The public half, as the trust list holds it."""
        public_key = self.private_key.public_key()
        return TrustedKey(self.kid, self.alg, self.unit, self.province, self.valid_from, self.valid_until, public_key)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys of every unit, the secret that derives pseudonymous subjects, and the kids withdrawn (never
    given to a new key)."""

    keys: tuple[SigningKey, ...]
    subject_secret: bytes
    withdrawn: tuple[str, ...] = ()

    def signing_key(self, unit: str, now: float, *, alg: str | None = None) -> SigningKey:
        """The newest key of ``unit`` valid at ``now`` (of algorithm ``alg``, when one is named)."""
        valid = [k for k in self.keys if k.unit == unit and k.valid_at(now) and alg in (None, k.alg)]
        if not valid:
            rotate = f"verifier issuer rotate --unit {unit}" + (f" --alg {alg}" if alg else "")
            raise KeyStoreError(f"no valid {alg or 'signing'} key for unit {unit!r}; run `{rotate}`")
        return max(valid, key=lambda k: k.serial)

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS, each with its province, unit, algorithm and window."""
        return {"keys": [public_jwk(k.public()) for k in self.keys]}

    def trust_list(self) -> TrustList:
        """The same keys as the verifier reads them."""
        return parse_trust_list(self.jwks())


def generate_key(unit: IssuingUnit, serial: int, *, alg: str = DEFAULT_ALG, now: float) -> SigningKey:
    """A fresh key for ``unit``, valid from a day before ``now`` for a year."""
    private_key: Any
    if alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private_key = ed25519.Ed25519PrivateKey.generate()
    elif alg == "SM2":
        private_key = Sm2PrivateKey.generate()
    else:
        raise UsageError(
            f"不支持的签名算法 {alg!r}，可用 ES256、EdDSA、SM2 / unsupported algorithm {alg!r}; use ES256, EdDSA or SM2"
        )
    start = int(now) - BACKDATE
    return SigningKey(f"{unit.code}-{serial}", unit.code, unit.province, alg, start, start + KEY_LIFETIME, private_key)


class KeyStore:
    """The key state in one folder. :meth:`keyring` creates missing keys and reloads only when
    ``keys.json`` changed, so a running issuer picks up a rotation made by another process."""

    def __init__(self, units: Iterable[IssuingUnit], directory: Path | None = None) -> None:
        self.units = {u.code: u for u in units}
        self.directory = directory or state_dir()
        self._cached: tuple[tuple[int, int], KeyRing] | None = None

    @property
    def _meta(self) -> Path:
        return self.directory / "keys.json"

    def keyring(self, now: float | None = None) -> KeyRing:
        """Every unit's keys, creating a key for each unit that has no valid one at ``now``."""
        now = time.time() if now is None else now
        ring = self._load()
        if ring is None or self._lacking(ring, now) or not (self.directory / "jwks.json").exists():
            with self._locked():  # another process may have created them while we waited
                ring = self._load() or KeyRing((), secrets.token_bytes(32))
                fresh = [generate_key(self.units[u], _next_serial(ring, u), now=now) for u in self._lacking(ring, now)]
                if fresh or not (self.directory / "jwks.json").exists():
                    ring = self._save(replace(ring, keys=ring.keys + tuple(fresh)), fresh)
        return ring

    def rotate(self, unit: str, *, alg: str = DEFAULT_ALG, now: float | None = None) -> SigningKey:
        """Add a new key for ``unit``; it signs from now on, and the older keys stay valid."""
        if unit not in self.units:
            raise UsageError(f"未知的签发单位 {unit!r}，可选：{', '.join(self.units)} / unknown issuing unit {unit!r}")
        now = time.time() if now is None else now
        ring = self.keyring(now)
        with self._locked():
            ring = self._load() or ring
            key = generate_key(self.units[unit], _next_serial(ring, unit), alg=alg, now=now)
            self._save(replace(ring, keys=(*ring.keys, key)), [key])
        return key

    def withdraw(self, kid: str, *, now: float | None = None) -> SigningKey:
        """Stop publishing ``kid`` and destroy its private key (a compromised key): verifiers stop trusting it
        at their next refresh. Its unit gets a fresh key when it has no other valid one; the kid is never
        given again."""
        with self._locked():
            ring = self._load()
            key = next((k for k in ring.keys if k.kid == kid), None) if ring is not None else None
            if ring is None or key is None:
                known = ", ".join(k.kid for k in ring.keys) if ring is not None else ""
                raise UsageError(f"未知的密钥 {kid!r}，可选：{known} / unknown key {kid!r}; keys: {known}")
            kept = tuple(k for k in ring.keys if k.kid != kid)
            # Unpublished first, then destroyed: a crash in between leaves a file no key names, never a
            # withdrawn key still published.
            self._save(replace(ring, keys=kept, withdrawn=(*ring.withdrawn, kid)), [])
            self._key_file(kid, key.alg).unlink(missing_ok=True)
        self.keyring(now)  # a replacement when the unit has no other valid key
        return key

    def trust_list(self, now: float | None = None) -> TrustList:
        """The local keys as a :class:`~verifier.core.trust.TrustList`."""
        return self.keyring(now).trust_list()

    def _key_file(self, kid: str, alg: str) -> Path:
        """Where the private key ``kid`` is kept: a JWK for SM2 (cryptography writes no SM2 PEM), else PEM."""
        return self.directory / "keys" / f"{kid}.{'jwk' if alg == 'SM2' else 'pem'}"

    def _lacking(self, ring: KeyRing, now: float) -> list[str]:
        have = {k.unit for k in ring.keys if k.valid_at(now)}
        return [code for code in self.units if code not in have]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        (self.directory / "keys").mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / "keys.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _load(self) -> KeyRing | None:
        try:
            st = self._meta.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns)
        if self._cached is not None and self._cached[0] == stamp:
            return self._cached[1]
        try:
            doc = json.loads(self._meta.read_text(encoding="utf-8"))
            keys = tuple(self._read_key(entry) for entry in doc["keys"])
            ring = KeyRing(keys, bytes.fromhex(doc["subject_secret"]), tuple(doc.get("withdrawn", ())))
        except (OSError, ValueError, KeyError, TypeError, InvalidKeyError) as exc:
            detail = f"{self._meta}: unreadable key state ({exc}); move the folder away to start afresh"
            raise KeyStoreError(detail) from None
        self._cached = (stamp, ring)
        return ring

    def _read_key(self, entry: dict[str, Any]) -> SigningKey:
        private_key: Any
        stored = self._key_file(entry["kid"], entry["alg"]).read_bytes()
        if entry["alg"] == "SM2":
            private_key = ALGORITHMS["SM2"].from_jwk(stored.decode("utf-8"))
        else:
            private_key = serialization.load_pem_private_key(stored, password=None)
        expected = {"ES256": ec.EllipticCurvePrivateKey, "EdDSA": ed25519.Ed25519PrivateKey, "SM2": Sm2PrivateKey}
        if not isinstance(private_key, expected.get(entry["alg"], ())):
            raise ValueError(f"key {entry['kid']} is not an {entry['alg']} key")
        return SigningKey(
            entry["kid"],
            entry["unit"],
            entry["province"],
            entry["alg"],
            entry["valid_from"],
            entry["valid_until"],
            private_key,
        )

    def _save(self, ring: KeyRing, fresh: list[SigningKey]) -> KeyRing:
        # Private keys first, then the metadata naming them, then the public list derived from both.
        for key in fresh:
            if key.alg == "SM2":
                stored = ALGORITHMS["SM2"].to_jwk(key.private_key).encode("utf-8")
            else:
                stored = key.private_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            write_atomic(self._key_file(key.kid, key.alg), stored, 0o600)
        doc = {
            "subject_secret": ring.subject_secret.hex(),
            "withdrawn": list(ring.withdrawn),
            "keys": [
                {"kid": k.kid, "unit": k.unit, "province": k.province, "alg": k.alg,
                 "valid_from": k.valid_from, "valid_until": k.valid_until}
                for k in ring.keys
            ],
        }  # fmt: skip
        write_atomic(self._meta, json.dumps(doc, indent=1).encode(), 0o600)
        write_atomic(self.directory / "jwks.json", json.dumps(ring.jwks(), indent=1).encode(), 0o644)
        self._cached = None
        return ring


def _next_serial(ring: KeyRing, unit: str) -> int:
    withdrawn = (int(serial) for owner, _, serial in (kid.rpartition("-") for kid in ring.withdrawn) if owner == unit)
    return max((*(k.serial for k in ring.keys if k.unit == unit), *withdrawn), default=0) + 1
