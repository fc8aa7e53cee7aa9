"""Trust per province: `--jwks SC=… --jwks CQ=…`, each source trusted only for its own province's units;
the last good list of each source on disk, so a restart while a source is down still verifies; a service
with no list not ready and looking again every second; a withdrawn key refused on every instance within
the refresh interval. Verifier apps are built through the factory, the issuer is the real mock issuer."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.helpers import Client, ClientFactory, ServerFactory
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.trust_source import parse_jwks_sources
from verifier.cli.service import jwks_sources
from verifier.core.catalogue import Catalogue
from verifier.core.token import parse
from verifier.core.trust import public_jwk
from verifier.errors import UsageError
from verifier.issuer.keys import KeyRing, KeyStore, generate_key
from verifier.issuer.web import create_issuer_app, province_jwks
from verifier.service.settings import JwksSource, Settings
from verifier.web.app import create_app

WAIT = 10.0  # seconds a test waits for what a 0.5 s or 1 s cadence brings; only a failure waits that long


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(["keys/jwks.json"], [("keys/jwks.json", None)], id="one-file-for-both"),
        pytest.param(
            ["SC=https://sc.example/jwks.json", "CQ=/etc/cq.json"],
            [("https://sc.example/jwks.json", "SC"), ("/etc/cq.json", "CQ")],
            id="one-flag-each",
        ),
        pytest.param(
            ["CQ=http://i:8081/.well-known/jwks.json?province=CQ, SC=http://i:8081/.well-known/jwks.json?province=SC"],
            [
                ("http://i:8081/.well-known/jwks.json?province=CQ", "CQ"),
                ("http://i:8081/.well-known/jwks.json?province=SC", "SC"),
            ],
            id="one-value-comma-separated",
        ),
        pytest.param(["  sc=a.json\n  cq=b.json "], [("a.json", "SC"), ("b.json", "CQ")], id="spaces-lowercase"),
        pytest.param([""], [], id="none"),
    ],
)
def test_jwks_forms(values: list[str], expected: list[tuple[str, str | None]]) -> None:
    """--jwks FILE-or-URL is one source for both provinces; SC=… and CQ=… one each, as flags or in one value."""
    assert parse_jwks_sources(values) == tuple(JwksSource(location, province) for location, province in expected)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(["SC=a.json"], "SC=FILE-or-URL and CQ=FILE-or-URL once each", id="one-province-only"),
        pytest.param(["SC=a.json", "SC=b.json", "CQ=c.json"], "once each", id="a-province-twice"),
        pytest.param(["a.json", "CQ=c.json"], "once each", id="both-and-one"),
        pytest.param(["a.json b.json"], "once each", id="two-for-both"),
        pytest.param(["SC=a.json", "BJ=b.json"], "SC or CQ", id="unknown-province"),
        pytest.param(["ftp://keys.example/jwks.json"], "http(s) URL", id="other-scheme"),
        pytest.param(["SC=", "CQ=b.json"], "file path", id="empty-location"),
    ],
)
def test_jwks_forms_refused(values: list[str], named: str) -> None:
    """Anything but one source for both provinces or one for each is a usage error, in Chinese and English."""
    with pytest.raises(UsageError, match=r"[\u4e00-\u9fff]") as refused:
        parse_jwks_sources(values)
    assert named in str(refused.value)


def test_flags_win_over_verifier_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    """VERIFIER_JWKS takes the same forms as --jwks; --jwks flags, when given, win."""
    monkeypatch.setenv("VERIFIER_JWKS", "SC=sc.json CQ=cq.json")
    assert jwks_sources(None) == (JwksSource("sc.json", "SC"), JwksSource("cq.json", "CQ"))
    assert jwks_sources(["both.json"]) == (JwksSource("both.json"),)
    monkeypatch.delenv("VERIFIER_JWKS")
    assert jwks_sources(None) == ()


def _write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


async def _verifier(
    aiohttp_client: ClientFactory, scene: Scene, state: Path, *sources: JwksSource, refresh: float = 60.0
) -> Client:
    """A verifier app reading ``sources``, keeping its state (last good lists) in ``state``."""
    settings = Settings(jwks=sources, state_dir=str(state), trust_refresh_seconds=refresh)
    return await aiohttp_client(
        create_app(settings, store=MemoryStore(), catalogue=scene.catalogue, api_keys=scene.api_keys)
    )


async def _issuer(aiohttp_server: ServerFactory, catalogue: Catalogue, keys: KeyStore) -> tuple[TestServer, str]:
    """The mock issuer on a port of its own, and its JWKS URL."""
    server = await aiohttp_server(create_issuer_app(catalogue, keys=keys))
    return server, str(server.make_url("/.well-known/jwks.json"))


async def _ready(client: Client) -> tuple[int, set[str]]:
    """/readyz: its status and the checks it names as failing."""
    async with client.get("/readyz") as response:
        body = await response.json(content_type=None)
        return response.status, {c["check"] for c in body.get("checks", [])}


async def _until(condition: Any, what: str) -> None:
    """Poll the coroutine function ``condition`` until it is true; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def _not_decided(scene: Scene, client: Client) -> bool:
    """Whether a scan is answered without a decision: never rejected KEY_UNKNOWN for want of a trust list.
    (The service raises TrustNotLoadedError; the web edge answers it 503.)"""
    status, answer = await scene.post_scan(client, "cq-notary-zhixin-01", scene.driving_licence("SC"))
    return status >= 500 and "decision" not in answer


def _codes(answer: dict[str, Any]) -> list[str]:
    return [r["code"] for r in answer["reasons"]]


async def test_a_key_for_a_sichuan_unit_from_the_chongqing_source_is_refused(
    aiohttp_client: ClientFactory, catalogue: Catalogue, scene: Scene, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The CQ source publishing a key for 四川省公安厅 (sc-police) — as a Sichuan key, or claiming Chongqing —
    gets neither trusted, each refused with a log line naming the CQ source; tokens it signs are KEY_UNKNOWN,
    while each province's own keys still verify."""
    now = time.time()
    ring = KeyStore(catalogue.units.values(), tmp_path / "issuer").keyring(now)
    rogue = generate_key(catalogue.units["sc-police"], 7, now=now)
    liar = replace(generate_key(catalogue.units["sc-police"], 8, now=now), province="CQ")
    cq = province_jwks(ring, "CQ")
    cq["keys"] += [public_jwk(rogue.public()), public_jwk(liar.public())]
    sc_source = JwksSource(_write(tmp_path / "sc.json", province_jwks(ring, "SC")), "SC")
    cq_source = JwksSource(_write(tmp_path / "cq.json", cq), "CQ")
    caplog.set_level(logging.WARNING, "verifier.trust")
    client = await _verifier(aiohttp_client, scene, tmp_path / "state", sc_source, cq_source)

    refused = [json.loads(r.getMessage()) for r in caplog.records if "trust_list_key_refused" in r.getMessage()]
    assert {(e["source"], e["problem"].split(":")[0]) for e in refused} == {("CQ", "kid 'sc-police-7'"),
                                                                           ("CQ", "kid 'sc-police-8'")}  # fmt: skip
    async with client.get("/v1/trust-list") as response:
        kids = {k["kid"] for k in (await response.json())["keys"]}
    assert kids == {k.kid for k in ring.keys}
    for key in (rogue, liar):
        token = Scene(catalogue, KeyRing((key,), ring.subject_secret), scene.api_keys).driving_licence("SC")
        status, answer = await scene.post_scan(client, "cq-notary-zhixin-01", token)
        assert (status, answer["decision"], _codes(answer)) == (200, "rejected", ["KEY_UNKNOWN"]), key.kid
    genuine = Scene(catalogue, ring, scene.api_keys)
    for province, counter in (("SC", "cq-notary-zhixin-01"), ("CQ", "sc-notary-shudu-01")):
        _, answer = await scene.post_scan(client, counter, genuine.driving_licence(province))
        assert answer["decision"] == "accepted", answer


async def test_each_province_is_read_from_the_mock_issuer(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, catalogue: Catalogue, scene: Scene, tmp_path: Path
) -> None:
    """A verifier given the mock issuer's ?province=SC and ?province=CQ lists is ready and accepts a licence of
    each province: each source vouches for its own province's units."""
    keys = KeyStore(catalogue.units.values(), tmp_path / "issuer")
    _, url = await _issuer(aiohttp_server, catalogue, keys)
    sources = (JwksSource(f"{url}?province=SC", "SC"), JwksSource(f"{url}?province=CQ", "CQ"))
    client = await _verifier(aiohttp_client, scene, tmp_path / "state", *sources)
    assert await _ready(client) == (200, set())
    issuer = Scene(catalogue, keys.keyring(), scene.api_keys)
    for province, counter in (("SC", "cq-notary-zhixin-01"), ("CQ", "sc-notary-shudu-01")):
        _, answer = await scene.post_scan(client, counter, issuer.driving_licence(province))
        assert answer["decision"] == "accepted", answer


async def test_a_restart_while_the_source_is_down_still_verifies(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    catalogue: Catalogue,
    scene: Scene,
    *,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The list a source gave is kept in the state folder: a service restarted while the issuer is down is
    ready from it and accepts a licence (logging that it took the last good list); a service with no such
    list in its state folder is not ready, /readyz naming the trust list, and answers a scan 503."""
    keys = KeyStore(catalogue.units.values(), tmp_path / "issuer")
    issuer, url = await _issuer(aiohttp_server, catalogue, keys)
    source = JwksSource(url)
    first = await _verifier(aiohttp_client, scene, tmp_path / "state", source)
    assert await _ready(first) == (200, set())
    await first.close()
    kept = list((tmp_path / "state" / "last-good-trust").glob("both-*.json"))
    assert len(kept) == 1
    assert {k["kid"] for k in json.loads(kept[0].read_text(encoding="utf-8"))["keys"]} == {
        k.kid for k in keys.keyring().keys
    }
    await issuer.close()

    caplog.set_level(logging.WARNING, "verifier.trust")
    restarted = await _verifier(aiohttp_client, scene, tmp_path / "state", source)
    assert await _ready(restarted) == (200, set())
    assert any("trust_list_from_last_good" in r.getMessage() for r in caplog.records)
    token = Scene(catalogue, keys.keyring(), scene.api_keys).driving_licence("CQ")
    _, answer = await scene.post_scan(restarted, "sc-notary-shudu-01", token)
    assert answer["decision"] == "accepted", answer

    elsewhere = await _verifier(aiohttp_client, scene, tmp_path / "other-state", source)
    assert await _ready(elsewhere) == (503, {"trust"})
    assert await _not_decided(scene, elsewhere)


async def test_with_no_list_yet_the_source_is_read_every_second(
    aiohttp_client: ClientFactory, catalogue: Catalogue, scene: Scene, tmp_path: Path
) -> None:
    """A service started before its issuer has published is not ready (/readyz 503 naming the trust list) and
    decides no scan (503); with --trust-refresh an hour, it is ready within seconds of the issuer publishing,
    for while it has no list it looks every second, and then accepts the issuer's licences."""
    issuer = tmp_path / "issuer"
    client = await _verifier(aiohttp_client, scene, tmp_path / "state", JwksSource(str(issuer / "jwks.json")),
                             refresh=3600)  # fmt: skip
    assert await _ready(client) == (503, {"trust"})
    assert await _not_decided(scene, client)
    keys = KeyStore(catalogue.units.values(), issuer)
    keys.keyring()  # the issuer makes and publishes its keys

    async def ready() -> bool:
        return await _ready(client) == (200, set())

    await _until(ready, "not ready although the issuer published its keys")
    token = Scene(catalogue, keys.keyring(), scene.api_keys).driving_licence("SC")
    _, answer = await scene.post_scan(client, "cq-notary-zhixin-01", token)
    assert answer["decision"] == "accepted", answer


async def test_a_withdrawn_key_stops_verifying_on_every_instance(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, catalogue: Catalogue, scene: Scene, tmp_path: Path
) -> None:
    """Two services reading the mock issuer every 0.5 s accept tokens of sc-police-1; once it is withdrawn
    (`issuer withdraw`, here from another key store on the same folder), a token its stolen private key signs
    is KEY_UNKNOWN on both, and a token of its replacement sc-police-2 is accepted on both."""
    keys = KeyStore(catalogue.units.values(), tmp_path / "issuer")
    ring = keys.keyring()
    _, url = await _issuer(aiohttp_server, catalogue, keys)
    services = [
        await _verifier(aiohttp_client, scene, tmp_path / f"state-{n}", JwksSource(url), refresh=0.5) for n in (1, 2)
    ]
    before = Scene(catalogue, ring, scene.api_keys)
    for service in services:
        _, answer = await scene.post_scan(service, "cq-notary-zhixin-01", before.driving_licence("SC"))
        assert answer["decision"] == "accepted", answer

    stolen = KeyStore(catalogue.units.values(), keys.directory).withdraw("sc-police-1")
    thief = Scene(catalogue, KeyRing((stolen,), ring.subject_secret), scene.api_keys)
    for service in services:

        async def refused(service: Client = service) -> bool:
            _, answer = await scene.post_scan(service, "cq-notary-zhixin-01", thief.driving_licence("SC"))
            return _codes(answer) == ["KEY_UNKNOWN"]

        await _until(refused, "the withdrawn key still verifies")

    after = Scene(catalogue, keys.keyring(), scene.api_keys)
    for service in services:
        token = after.driving_licence("SC")
        assert parse(token).header["kid"] == "sc-police-2"
        _, answer = await scene.post_scan(service, "cq-notary-zhixin-01", token)
        assert answer["decision"] == "accepted", answer
