"""Fuzzing: property-based tests of the decision core (no exception escapes decide(), and no change
to a genuine token makes another token that is accepted), and schemathesis against the running service
(no 5xx, and every answer matches schemas/openapi.json). Example counts are kept small so the suite
stays fast."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Err

from tests.forge import Kit, assemble, header_for, make_kit, split
from tests.redis_server import free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.paths import schema_dir
from verifier.core.catalogue import Catalogue
from verifier.core.decide import Decision
from verifier.core.token import b64url_decode_strict
from verifier.service.settings import Settings
from verifier.web.server import ProblemRunner

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture(scope="module")
def kit(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    """Keys of every issuing unit at NOW."""
    return make_kit(catalogue, tmp_path_factory.mktemp("fuzz-keys"))


@pytest.fixture(scope="module")
def genuine(kit: Kit) -> str:
    """One genuine token, accepted at the default counter."""
    token = kit.mint().token
    assert kit.decide(token).accepted
    return token


def _decide(kit: Kit, token: str) -> Decision:
    decision = kit.decide(token)
    assert decision.decision in ("accepted", "rejected")
    return decision


@FAST
@given(text=st.text(max_size=1200))
def test_no_exception_escapes_decide_for_any_text(kit: Kit, text: str) -> None:
    """Any text at all (surrogates included) gets a decision, and it is a rejection."""
    assert not _decide(kit, text).accepted


@FAST
@given(raw=st.binary(max_size=1200))
def test_no_exception_escapes_decide_for_bytes_read_as_text(kit: Kit, raw: bytes) -> None:
    """Arbitrary bytes read as text (latin-1, or UTF-8 with surrogate escapes) are rejected without an exception."""
    for text in (raw.decode("latin-1"), raw.decode("utf-8", "surrogateescape")):
        assert not _decide(kit, text).accepted


@FAST
@given(parts=st.lists(st.text(alphabet=B64URL, max_size=300), min_size=1, max_size=5))
def test_no_exception_escapes_decide_for_base64url_shaped_text(kit: Kit, parts: list[str]) -> None:
    """Dot-separated runs of the base64url alphabet — what gets past the first checks — are rejected cleanly."""
    assert not _decide(kit, ".".join(parts)).accepted


@FAST
@given(data=st.data())
def test_no_single_character_change_makes_another_accepted_token(kit: Kit, genuine: str, data: st.DataObject) -> None:
    """Replacing any one character of a genuine token is rejected: strict base64url leaves no second spelling."""
    position = data.draw(st.integers(0, len(genuine) - 1))
    char = data.draw(st.characters(codec="utf-8") | st.sampled_from(B64URL + ".="))
    mutated = genuine[:position] + char + genuine[position + 1 :]
    decision = _decide(kit, mutated)
    assert not decision.accepted or mutated == genuine


@FAST
@given(data=st.data())
def test_no_insertion_or_deletion_makes_another_accepted_token(kit: Kit, genuine: str, data: st.DataObject) -> None:
    """Inserting or deleting characters anywhere in a genuine token is always rejected."""
    start = data.draw(st.integers(0, len(genuine)))
    deleted = data.draw(st.integers(0, 3))
    inserted = data.draw(st.text(alphabet=B64URL + ".=", max_size=3))
    mutated = genuine[:start] + inserted + genuine[start + deleted :]
    if mutated != genuine:
        assert not _decide(kit, mutated).accepted


@FAST
@given(data=st.data())
def test_every_changed_byte_decodes_to_different_bytes_or_is_refused(
    kit: Kit, genuine: str, data: st.DataObject
) -> None:
    """A base64url character changed within a segment either is refused by the decoder or decodes to other bytes."""
    segment = data.draw(st.sampled_from(genuine.split(".")))
    position = data.draw(st.integers(0, len(segment) - 1))
    char = data.draw(st.sampled_from(B64URL).filter(lambda c: c != segment[position]))
    changed = segment[:position] + char + segment[position + 1 :]
    try:
        decoded = b64url_decode_strict(changed)
    except ValueError:
        return
    assert decoded != b64url_decode_strict(segment)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FAST
@given(
    claim=st.sampled_from(["iss", "prv", "lt", "ch", "no", "hn", "sub", "vf", "vu", "iat", "exp", "jti"]),
    value=JSON_VALUES,
)
def test_any_value_of_any_claim_signed_by_the_real_key_is_decided(kit: Kit, claim: str, value: Any) -> None:
    """A claim replaced by any JSON value and signed by the genuine key gets a decision, never an exception;
    accepted only if the value is of the claim's own type."""
    claims = kit.claims()
    claims[claim] = value
    decision = _decide(kit, kit.forge(claims, unit="sc-police"))
    if decision.accepted:
        assert type(value) is type(kit.claims()[claim])


@FAST
@given(header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku", "crit", "x"]), JSON_VALUES, max_size=4))
def test_any_header_is_decided_and_only_the_exact_one_accepted(kit: Kit, header: dict[str, Any]) -> None:
    """Any header object over genuine claims, signed by the genuine key, is rejected unless it is exactly
    the key's own header."""
    key = kit.key("sc-police")
    decision = _decide(kit, assemble(header, kit.claims(), sign=key.sign))
    assert not decision.accepted or header == header_for(key)


def test_the_genuine_token_splits_as_the_helpers_expect(genuine: str) -> None:
    """The token the mutations start from is a three-part compact JWS of our typ."""
    header, claims, _ = split(genuine)
    assert header["typ"] == "cylp"
    assert "jti" in claims


# --- schemathesis against the running service ------------------------------------------------------

# A request the document forbids must be refused with a 4xx; 413 (body too large) is one of them. A request
# it allows may still name a scenario, licence type or province the catalogue lacks: a documented 422.
_REFUSALS = ["400", "401", "403", "404", "405", "413", "415", "422"]
_ACCEPTANCES = ["2xx", "401", "403", "404", "422"]
SCHEMA = schemathesis.openapi.from_path(
    schema_dir() / "openapi.json",
    config=SchemathesisConfig.from_dict(
        {
            "checks": {
                "negative_data_rejection": {"expected-statuses": _REFUSALS},
                "positive_data_acceptance": {"expected-statuses": _ACCEPTANCES},
            }
        }
    ),
)


@dataclass
class Live:
    """The verifier serving on a loopback port from a thread of its own."""

    url: str
    counter_auth: dict[str, str]
    admin_auth: dict[str, str]


@pytest.fixture(scope="module")
def live(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Start the app on 127.0.0.1 in a thread with its own event loop; stop it afterwards."""
    scene = Scene.build(catalogue, tmp_path_factory.mktemp("fuzz-live"))
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = ProblemRunner(scene.app(Settings(), store=MemoryStore()), access_log=None)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield Live(f"http://127.0.0.1:{port}", scene.auth("cq-notary-zhixin-01"), scene.admin())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _auth_for(case: Any, live: Live) -> dict[str, str]:
    path = case.operation.path
    if path in ("/v1/revocations", "/v1/stats"):
        return live.admin_auth
    return live.counter_auth if path.startswith("/v1/scans") else {}


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_service_matches_its_openapi_document(case: Any, live: Live) -> None:
    """Generated requests to every documented operation get no 5xx, and every answer matches the document."""
    case.call_and_validate(base_url=live.url, headers=_auth_for(case, live))


def test_schemathesis_reaches_every_documented_operation() -> None:
    """The document the fuzzer reads lists the operations the service serves."""
    operations = set()
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation the document describes but schemathesis cannot read
        operations.add((result.ok().method.upper(), result.ok().path))
    assert ("POST", "/v1/scans") in operations
    assert ("POST", "/v1/revocations") in operations
    assert len(operations) >= 9
    assert json.loads(Path(schema_dir() / "openapi.json").read_text())["openapi"].startswith("3.1")
