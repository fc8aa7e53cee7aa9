"""API keys in the key file (embedded mode) as a running service sees them: a key issued elsewhere works
at once, a replaced or revoked one stops within a second, a wrong one never works, and a key is replaced
only when asked to."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from verifier.adapters.api_keys import ADMIN, ApiKeys
from verifier.errors import KeyExistsError


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replace ``time.monotonic`` for this test: verifier.adapters.api_keys reads its clock through the module."""
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def _touch_later(path: Path) -> None:
    """Move the file's modification time on, as a later write would (file systems keep coarse times)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_key_issued_by_another_process_works_at_once(tmp_path: Path, clock: Clock) -> None:
    """The service has read the file just now; a key issued after that is still known on its first use."""
    service = ApiKeys(tmp_path / "api-keys.json")
    assert service.principal("cq-notary-zhixin-01.nothing") is None
    key = ApiKeys(tmp_path / "api-keys.json").issue("cq-notary-zhixin-01")
    _touch_later(tmp_path / "api-keys.json")
    assert service.principal(key) == "cq-notary-zhixin-01"


def test_a_replaced_key_stops_working_within_a_second(tmp_path: Path, clock: Clock) -> None:
    """The old key keeps working until the next look at the file, at most a second later; the new one at once."""
    path = tmp_path / "api-keys.json"
    old = ApiKeys(path).issue(ADMIN)
    service = ApiKeys(path)
    assert service.principal(old) == ADMIN
    new = ApiKeys(path).issue(ADMIN, replace=True)
    _touch_later(path)
    assert service.principal(new) == ADMIN  # unknown to it: it looks at the file again
    clock.now += 0.5
    assert service.principal(old) is None  # that look has already replaced the old hash
    ApiKeys(path).issue(ADMIN, replace=True)  # replaces the new key in turn
    _touch_later(path)
    clock.now += 0.5
    assert service.principal(new) == ADMIN  # half a second since the last look: not looked at yet
    clock.now += 0.5
    assert service.principal(new) is None  # a second since the last look: it looks again


def test_a_wrong_secret_or_principal_is_refused(tmp_path: Path, clock: Clock) -> None:
    """Only the exact key issued is its principal's."""
    key = ApiKeys(tmp_path / "api-keys.json").issue("cq-notary-zhixin-01")
    service = ApiKeys(tmp_path / "api-keys.json")
    who, _, secret = key.partition(".")
    assert service.principal(key) == who
    for wrong in (f"{who}.{secret[:-1]}x", f"{who}.", who, f"cq-notary-zhixin-02.{secret}", "", "."):
        assert service.principal(wrong) is None, wrong


def test_a_key_is_not_replaced_unless_asked(tmp_path: Path, clock: Clock) -> None:
    """Issuing a key for a principal that has one is refused, and the key it has keeps working."""
    path = tmp_path / "api-keys.json"
    first = ApiKeys(path).issue("cq-notary-zhixin-01")
    with pytest.raises(KeyExistsError) as refused:
        ApiKeys(path).issue("cq-notary-zhixin-01")
    assert refused.value.principal == "cq-notary-zhixin-01"
    assert ApiKeys(path).principal(first) == "cq-notary-zhixin-01"


def test_a_revoked_key_stops_working_within_a_second(tmp_path: Path, clock: Clock) -> None:
    """After revoke() the key works until the service's next look at the file, at most a second later;
    revoking a principal without a key says so and changes nothing."""
    path = tmp_path / "api-keys.json"
    key = ApiKeys(path).issue("cq-notary-zhixin-01")
    other = ApiKeys(path).issue("cq-notary-zhixin-02")
    service = ApiKeys(path)
    assert service.principal(key) == "cq-notary-zhixin-01"
    assert ApiKeys(path).revoke("cq-notary-zhixin-01") is True
    _touch_later(path)
    clock.now += 1.0
    assert service.principal(key) is None
    assert service.principal(other) == "cq-notary-zhixin-02"
    assert ApiKeys(path).revoke("cq-notary-zhixin-01") is False
    assert ApiKeys(path).revoke(ADMIN) is False
