"""The trust list follows the issuer's JWKS: refreshed on an unknown kid (rate-limited) and
periodically, so a key rotation needs no restart; a bad document never empties it."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ClientFactory
from tests.redis_server import free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.trust_source import JwksTrustSource
from verifier.core.catalogue import Catalogue
from verifier.core.trust import parse_trust_list
from verifier.issuer.keys import KeyStore
from verifier.service.settings import JwksSource, Settings
from verifier.web.app import create_app


async def test_rotated_key_is_trusted_without_restart(
    aiohttp_client: ClientFactory, catalogue: Catalogue, scene: Scene, tmp_path: Path
) -> None:
    """A token signed by a key rotated in after start is accepted: the unknown kid triggers one refresh."""
    state = tmp_path / "issuer"
    keys = KeyStore(catalogue.units.values(), state)
    keys.keyring()
    issuer = Scene(catalogue, keys.keyring(), scene.api_keys)  # the scene's counter keys, this issuer's keys
    app = create_app(
        Settings(jwks=(JwksSource(str(state / "jwks.json")),)),
        store=MemoryStore(),
        catalogue=catalogue,
        api_keys=issuer.api_keys,
    )
    client = await aiohttp_client(app)
    keys.rotate("sc-police")
    rotated = KeyStore(catalogue.units.values(), state).keyring()
    token = Scene(catalogue, rotated, issuer.api_keys).driving_licence("SC")
    body = {"token": token, "scenario": "notary-driving-licence"}
    async with client.post("/v1/scans", json=body, headers=issuer.auth("cq-notary-zhixin-01")) as response:
        decision = await response.json()
    assert decision["decision"] == "accepted", decision
    async with client.get("/v1/trust-list") as response:
        kids = {k["kid"] for k in (await response.json())["keys"]}
    assert {"sc-police-1", "sc-police-2"} <= kids


async def test_unknown_kid_refresh_is_rate_limited(tmp_path: Path) -> None:
    """Tokens with unknown kids cannot make the service fetch the trust list more than once per interval."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": []}))
    now = [100.0]
    source = JwksTrustSource(path, min_refresh_interval=10, clock=lambda: now[0])
    fetched = []
    original = source._fetch

    async def counting(source: Any) -> object:
        fetched.append(source)
        return await original(source)

    source._fetch = counting  # type: ignore[method-assign]
    assert await source.refresh_for_unknown_kid() is False  # fetched, but no keys in it
    assert await source.refresh_for_unknown_kid() is False  # within the interval: not fetched
    now[0] += 11
    await source.refresh_for_unknown_kid()
    assert len(fetched) == 2


async def test_broken_document_keeps_the_current_keys(catalogue: Catalogue, tmp_path: Path) -> None:
    """A trust list that cannot be read or holds no valid key does not replace the one in use."""
    good = KeyStore(catalogue.units.values(), tmp_path / "k").keyring().trust_list()
    path = tmp_path / "jwks.json"
    source = JwksTrustSource(path, initial=good)
    path.write_text("{not json")
    assert await source.refresh() is False
    path.write_text(json.dumps({"keys": [{"kid": "x", "alg": "HS256"}]}))
    assert await source.refresh() is False
    assert source.current is good


def test_trust_list_refuses_private_and_mismatched_keys(catalogue: Catalogue, tmp_path: Path) -> None:
    """A JWKS entry with a private part, an algorithm other than its key type, or no province is refused by name."""
    jwks = KeyStore(catalogue.units.values(), tmp_path).keyring().jwks()
    entry = jwks["keys"][0]
    bad = [
        {**entry, "kid": "p", "d": "AAAA"},
        {**entry, "kid": "a", "alg": "EdDSA"},
        {**entry, "kid": "n", "province": "BJ"},
    ]
    parsed = parse_trust_list({"keys": [entry, *bad]})
    assert list(parsed.keys) == [entry["kid"]]
    assert len(parsed.problems) == 3
    assert all(kid in problem for kid, problem in zip(("'p'", "'a'", "'n'"), parsed.problems, strict=True))


async def test_periodic_refresh_picks_up_a_new_file(catalogue: Catalogue, tmp_path: Path) -> None:
    """The periodic refresh replaces the trust list with the file's newer content."""
    keys = KeyStore(catalogue.units.values(), tmp_path / "k")
    source = JwksTrustSource(tmp_path / "k" / "jwks.json", initial=keys.keyring().trust_list())
    keys.rotate("cq-sport", alg="EdDSA")
    started = time.monotonic()
    assert await source.refresh() is True
    assert "cq-sport-2" in source.current.keys
    assert source.current.keys["cq-sport-2"].alg == "EdDSA"
    assert time.monotonic() - started < 5


async def test_a_source_that_stays_down_is_logged_once(
    catalogue: Catalogue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While nothing is loaded the source is read every second: its failure is logged once, not every time,
    and its return once."""
    caplog.set_level(logging.WARNING, "verifier.trust")
    path = tmp_path / "k" / "jwks.json"
    source = JwksTrustSource(path)
    for _ in range(3):
        assert await source.refresh() is False
    KeyStore(catalogue.units.values(), tmp_path / "k").keyring()
    assert await source.refresh() is True
    assert source.loaded
    events = [json.loads(r.getMessage())["event"] for r in caplog.records]
    assert events == ["trust_list_refresh_failed", "trust_list_source_back"]


async def test_a_url_s_password_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """A source URL with a user and password is logged without them."""
    caplog.set_level(logging.WARNING, "verifier.trust")
    source = JwksTrustSource(f"http://ops:s3cret@127.0.0.1:{free_port()}/jwks.json?province=SC")
    assert await source.refresh() is False
    (event,) = [json.loads(r.getMessage()) for r in caplog.records]
    assert event["location"].startswith("http://127.0.0.1:")
    assert event["location"].endswith("/jwks.json?province=SC")
    assert "s3cret" not in caplog.text
    assert "ops:" not in caplog.text
