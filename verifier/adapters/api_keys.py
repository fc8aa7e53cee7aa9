"""API keys of counters and of the administrator, kept as hashes only: in the shared store when the
service runs on Redis (:mod:`verifier.adapters.redis_keys`, so every instance knows the same keys), in
the state folder's ``api-keys.json`` in embedded mode (this module's :class:`ApiKeys`).

A key reads ``<principal>.<secret>``: the principal part finds the one stored hash to compare, and
the comparison is constant-time. The secret is 32 random bytes, so a single SHA-256 is enough to
make a stolen hash useless (there is no password to brute-force). A principal has one key at most:
issuing another replaces it only when asked to (``replace``), so no key stops working by surprise.

The key file is re-read when it changes, so a key issued by ``verifier counters key ID`` works at once
on a running service: its modification time is looked at on any key the service does not know and at
most once a second otherwise (a look is a system call, and every scan shows a key), so a replaced or
revoked key stops working within a second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from verifier.adapters.paths import state_dir
from verifier.errors import KeyExistsError

ADMIN = "@admin"  # the administrator's entry; counter ids never start with @
APP_PREFIX = "@app:"  # an app's entry is this and its channel code: @app:tianfu-tongban


class KeyLookup(Protocol):
    """What the web shell asks of the keys: who holds this one."""

    def principal(self, key: str) -> str | None:
        """Who holds ``key`` (a counter id, :data:`ADMIN` or an app's entry), or None."""
        ...  # pragma: no cover - a protocol


def app_principal(channel: str) -> str:
    """The key entry of the app (亮证渠道) ``channel``."""
    return APP_PREFIX + channel


def app_channel(principal: str) -> str | None:
    """The channel whose app holds the key entry ``principal``; None for a counter or the administrator."""
    return principal.removeprefix(APP_PREFIX) if principal.startswith(APP_PREFIX) else None


def new_key(principal: str) -> tuple[str, str]:
    """A fresh key for ``principal`` and the hash to store for it."""
    key = f"{principal}.{secrets.token_urlsafe(32)}"
    return key, digest(key)


def digest(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def holder(hashes: dict[str, str], key: str) -> str | None:
    """Whose key ``key`` is, given the stored hashes by principal; None for any key not issued."""
    who, _, secret = key.partition(".")
    stored = hashes.get(who)
    if stored is None or not secret:
        return None
    return who if hmac.compare_digest(stored, digest(key)) else None


def _path() -> Path:
    return state_dir() / "api-keys.json"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


_LOOK_EVERY = 1.0  # seconds between looks at the key file's modification time


@dataclass
class ApiKeys:
    """The key file of embedded mode, and the service's view of it, reloaded when its modification time changes."""

    path: Path = field(default_factory=_path)
    _mtime: int = -1
    _hashes: dict[str, str] = field(default_factory=dict)
    _looked: float = float("-inf")  # time.monotonic() of the last look at the file

    def _refresh(self) -> None:
        self._looked = time.monotonic()
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = 0
        if mtime != self._mtime:
            self._hashes = _read(self.path)
            self._mtime = mtime

    def issue(self, principal: str, *, replace: bool = False) -> str:
        """A fresh key for ``principal``, valid at once. If it has one already, that key is replaced
        when ``replace`` is true; otherwise :class:`verifier.errors.KeyExistsError`, and it stays valid."""
        key, hashed = new_key(principal)
        hashes = _read(self.path)
        if principal in hashes and not replace:
            raise KeyExistsError(principal)
        hashes[principal] = hashed
        self._write(hashes)
        return key

    def revoke(self, principal: str) -> bool:
        """Make ``principal``'s key invalid; False if it had none."""
        hashes = _read(self.path)
        if hashes.pop(principal, None) is None:
            return False
        self._write(hashes)
        return True

    def _write(self, hashes: dict[str, str]) -> None:
        """Replace the file in one rename, readable by its owner only: a reader sees the old or the new."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".api-keys.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(hashes, fh, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def principal(self, key: str) -> str | None:
        """Who holds ``key`` (a counter id or :data:`ADMIN`), or None."""
        looked = time.monotonic() - self._looked >= _LOOK_EVERY
        if looked:
            self._refresh()
        who = holder(self._hashes, key)
        if who is None and not looked:  # perhaps issued a moment ago
            self._refresh()
            who = holder(self._hashes, key)
        return who
