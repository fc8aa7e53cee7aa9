"""API keys of counters and of the administrator, stored hashed in the state folder.

A key reads ``<principal>.<secret>``: the principal part finds the one stored hash to compare, and
the comparison is constant-time. The secret is 32 random bytes, so a single SHA-256 is enough to
make the stored file useless to a thief (there is no password to brute-force). The file is re-read when it
changes, so a key issued by ``verifier counters key ID`` works at once on a running service: its
modification time is looked at on any key the service does not know and at most once a second
otherwise (a look is a system call, and every scan shows a key), so a replaced key stops working
within a second.
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

from verifier.adapters.paths import state_dir

ADMIN = "@admin"  # the administrator's entry; counter ids never start with @


def _path() -> Path:
    return state_dir() / "api-keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_counter_key(counter_id: str) -> str:
    """A fresh API key for a counter, valid at once for the service using the state folder."""
    return ApiKeys().issue(counter_id)


def issue_admin_key() -> str:
    """A fresh administrator key (revocations, statistics dashboard)."""
    return ApiKeys().issue(ADMIN)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


_LOOK_EVERY = 1.0  # seconds between looks at the key file's modification time


@dataclass
class ApiKeys:
    """The service's view of the key file, reloaded when its modification time changes."""

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

    def issue(self, principal: str) -> str:
        """Make a fresh key for ``principal`` valid (replacing its previous one) and return it."""
        key = f"{principal}.{secrets.token_urlsafe(32)}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hashes = _read(self.path)
        hashes[principal] = _digest(key)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".api-keys.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(hashes, fh, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        return key

    def principal(self, key: str) -> str | None:
        """Who holds ``key`` (a counter id or :data:`ADMIN`), or None."""
        looked = time.monotonic() - self._looked >= _LOOK_EVERY
        if looked:
            self._refresh()
        who = self._holder(key)
        if who is None and not looked:  # perhaps issued a moment ago
            self._refresh()
            who = self._holder(key)
        return who

    def _holder(self, key: str) -> str | None:
        who, _, secret = key.partition(".")
        stored = self._hashes.get(who)
        if stored is None or not secret:
            return None
        return who if hmac.compare_digest(stored, _digest(key)) else None
