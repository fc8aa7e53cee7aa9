"""The OpenAPI document in schemas/ against the running service: every operation and every status it
documents is produced by the real app, and every answer matches the schema, content type and headers
the document gives for that operation and status."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy.exc import OperationalError

from tests.forge import split
from tests.helpers import PROBLEM, Client, ClientFactory
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.paths import data_dir
from verifier.core.catalogue_view import catalogue_document
from verifier.core.reasons import MESSAGES
from verifier.core.trust import TrustList
from verifier.errors import RateLimitedError, StoreUnavailableError, TrustNotLoadedError
from verifier.issuer.mint import citizen_id
from verifier.service.ports import ScanRecord, StoreHealth
from verifier.service.settings import Settings
from verifier.web import appkeys

SPEC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
BASE = "urn:cy-licence:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(BASE, DRAFT202012.create_resource(SPEC))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


# --- the document -------------------------------------------------------------------------------


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _pointer(*parts: str) -> str:
    return "".join("/" + _escape(p) for p in parts)


def _lookup(pointer: str) -> Any:
    node: Any = SPEC
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _follow(pointer: str) -> tuple[str, Any]:
    """The object at ``pointer``, following local references (response and header components)."""
    node = _lookup(pointer)
    while isinstance(node, dict) and set(node) == {"$ref"}:
        pointer = node["$ref"].removeprefix("#")
        node = _lookup(pointer)
    return pointer, node


def _validator(pointer: str) -> Draft202012Validator:
    """A 2020-12 validator of the schema at ``pointer``, resolving ``$ref`` inside the document."""
    return Draft202012Validator(
        {"$ref": f"{BASE}#{pointer}"}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _errors(pointer: str, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(pointer).iter_errors(instance)]


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _documented() -> set[tuple[str, str, str]]:
    return {(p, m, s) for p, m, op in _operations() for s in op["responses"] if s != "default"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- calling the service and checking answers against the document ---------------------------------


class FlakyStore(MemoryStore):
    """The embedded store, which a test can make unreachable."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("connection refused (test)")

    async def lookup(self, tag: str, counter: str, digest: str, licence_id: str, *, rate: Any, operator: Any) -> Any:
        """See :meth:`MemoryStore.lookup`."""
        self._check()
        return await super().lookup(tag, counter, digest, licence_id, rate=rate, operator=operator)

    async def note(self, tag: str, record: ScanRecord, rate: Any) -> None:
        """See :meth:`MemoryStore.note`."""
        self._check()
        await super().note(tag, record, rate)

    async def commit(self, commit: Any) -> Any:
        """See :meth:`MemoryStore.commit`."""
        self._check()
        return await super().commit(commit)

    async def get_scan(self, scan_id: str) -> tuple[ScanRecord, bool] | None:
        """See :meth:`MemoryStore.get_scan`."""
        self._check()
        return await super().get_scan(scan_id)

    async def set_revoked(self, licence_id: str, revoked: bool, reason: str, ttl: int | None) -> None:
        """See :meth:`MemoryStore.set_revoked`."""
        self._check()
        await super().set_revoked(licence_id, revoked, reason, ttl)

    async def health(self) -> StoreHealth:
        """See :meth:`MemoryStore.health`."""
        self._check()
        return await super().health()

    async def stats(self) -> dict[str, int]:
        """See :meth:`MemoryStore.stats`."""
        self._check()
        return await super().stats()

    async def ping(self) -> None:
        """See :meth:`MemoryStore.ping`."""
        self._check()


@dataclass
class Api:
    """A client of the real app that checks every answer against the document and notes which
    (path, method, status) it has seen."""

    client: Client
    scene: Scene
    store: FlakyStore
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    async def call(
        self,
        method: str,
        url: str,
        status: int,
        *,
        path: str | None = None,
        as_: str | None = None,
        json_body: Any = None,
        data: bytes | str | None = None,
        content_type: str | None = None,
        accept: str | None = None,
    ) -> Any:
        """Send a request as ``as_`` (a counter id, ADMIN, an app's entry, "wrong" or None), expect ``status`` and
        check the answer against the operation at ``path`` (default ``url``); returns the body."""
        path = path or url.partition("?")[0]
        method = method.lower()
        headers: dict[str, str] = {"Accept": accept} if accept else {}
        if as_ == "wrong":
            headers["Authorization"] = "Bearer cq-notary-zhixin-01.not-the-key"
        elif as_ is not None:
            headers.update(self.scene.auth(as_))
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False)
            content_type = content_type or "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await self.client.request(method, url, data=data, headers=headers)
        text = await response.text()
        assert response.status == status, text
        operation = _pointer("paths", path, method)
        if json_body is not None and "requestBody" in _lookup(operation):
            request_schema = _pointer("paths", path, method, "requestBody", "content", "application/json", "schema")
            errors = _errors(request_schema, json_body)
            if status == 200:
                assert errors == [], f"a request the service took fails the request schema: {errors}"
            elif status == 400:
                assert errors, "a request the service refused as malformed passes the request schema"
        body = self._check_answer(operation, response.status, response.content_type, response.headers, text)
        self.seen.add((path, method, str(status)))
        return body

    def _check_answer(self, operation: str, status: int, content_type: str, headers: Any, text: str) -> Any:
        responses = _lookup(operation + "/responses")
        key = str(status) if str(status) in responses else "default"
        where, documented = _follow(f"{operation}/responses/{key}")
        content = documented["content"]
        assert content_type in content, f"{status} answered {content_type}, documented {sorted(content)}"
        if status >= 400:
            assert content_type == PROBLEM
        for name in documented.get("headers", {}):
            header_at, header = _follow(f"{where}/headers/{_escape(name)}")
            if header.get("required"):
                assert name in headers, f"{status} lacks its {name} header"
            if name in headers:
                assert _errors(f"{header_at}/schema", headers[name]) == []
        body: Any = text if content_type.startswith("text/") else json.loads(text)
        errors = _errors(f"{where}/content/{_escape(content_type)}/schema", body)
        assert errors == [], f"{operation} {status}: {errors}"
        if content_type == PROBLEM:
            assert body["status"] == status
        return body


@pytest.fixture
async def api(aiohttp_client: ClientFactory, scene: Scene, tmp_path: Path) -> Api:
    """The real verifier app on a store that can be made unreachable, with an audit trail of its own."""
    store = FlakyStore()
    settings = Settings(audit_url=f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    return Api(await aiohttp_client(scene.app(settings, store=store)), scene, store)


# --- the exercises: each one a group of calls on a fresh or shared app ------------------------------

NOTARY = "cq-notary-zhixin-01"
NOTARY_2 = "cq-notary-zhixin-02"
ADMIN = "@admin"


async def scans_decide(api: Api) -> None:
    """Accepted, cached, replayed at a second counter, rejected with and without a licence; then read back."""
    token = api.scene.driving_licence("SC", holder="张三", licence_no=citizen_id(123456))
    body = {"token": token, "scenario": "notary-driving-licence", "serial_no": "CQGZ-0001", "operator": "clerk-1"}
    first = await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body=body)
    assert (first["decision"], first["cached"], first["licence"]["type"]) == ("accepted", False, "driving-licence")
    again = await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body=body)
    assert (again["decision"], again["cached"], again["scan_id"]) == ("accepted", True, first["scan_id"])
    replay = await api.call("POST", "/v1/scans", 200, as_=NOTARY_2, json_body=body)
    assert [r["code"] for r in replay["reasons"]] == ["REPLAYED"]
    garbage = await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body={**body, "token": "not-a-token"})
    assert (garbage["decision"], garbage["licence"]) == ("rejected", None)
    assert garbage["reasons"][0]["code"] == "TOKEN_MALFORMED"
    lawyer = api.scene.apps["yukuaiban"].present("lawyer-licence", "CQ").token
    wrong = await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body={**body, "token": lawyer})
    assert wrong["decision"] == "rejected"
    assert wrong["licence"]["type"] == "lawyer-licence"
    assert "SCENARIO_NOT_FOR_LICENCE" in {r["code"] for r in wrong["reasons"]}
    template = "/v1/scans/{scan_id}"
    read = await api.call("GET", f"/v1/scans/{first['scan_id']}", 200, path=template, as_=NOTARY)
    assert read == first
    await api.call("GET", f"/v1/scans/{first['scan_id']}", 404, path=template, as_=NOTARY_2)
    await api.call("GET", "/v1/scans/0123456789-nosuchscan000", 404, path=template, as_=NOTARY)
    await api.call("GET", f"/v1/scans/{first['scan_id']}", 401, path=template)


async def scans_refuse(api: Api) -> None:
    """Malformed bodies are 400, missing or wrong keys 401, oversized 413, not JSON 415, unknown scenario or an
    item not of the scenario 422."""
    token = api.scene.driving_licence("SC")
    good = {"token": token, "scenario": "notary-driving-licence"}
    await api.call("POST", "/v1/scans", 400, as_=NOTARY, data=b'{"token": ', content_type="application/json")
    await api.call("POST", "/v1/scans", 400, as_=NOTARY, data=b"[1, 2]", content_type="application/json")
    missing = await api.call("POST", "/v1/scans", 400, as_=NOTARY, json_body={"scenario": "notary-driving-licence"})
    assert missing["field"] == "token"
    number = await api.call("POST", "/v1/scans", 400, as_=NOTARY, json_body={**good, "serial_no": 17})
    assert number["field"] == "serial_no"
    await api.call("POST", "/v1/scans", 401, json_body=good)
    await api.call("POST", "/v1/scans", 401, as_="wrong", json_body=good)
    await api.call("POST", "/v1/scans", 401, as_=ADMIN, json_body=good)
    await api.call("POST", "/v1/scans", 413, as_=NOTARY, json_body={**good, "token": "x" * 20_000})
    await api.call("POST", "/v1/scans", 415, as_=NOTARY, data=json.dumps(good), content_type="text/plain")
    unknown = await api.call("POST", "/v1/scans", 422, as_=NOTARY, json_body={**good, "scenario": "karaoke"})
    assert (unknown["field"], unknown["allowed"]) == ("scenario", ["notary-driving-licence"])
    item = await api.call("POST", "/v1/scans", 422, as_=NOTARY, json_body={**good, "item": 44})
    assert (item["field"], item["allowed"]) == ("item", [22])


async def revocations(api: Api) -> None:
    """An admin revokes and restores; bad bodies, keys and unknown types are refused as documented."""
    body = {"type": "employment-cert", "province": "CQ", "licence_no": citizen_id(777001, "CQ"), "reason": "注销"}
    revoked = await api.call("POST", "/v1/revocations", 200, as_=ADMIN, json_body=body)
    assert revoked == {**body, "revoked": True}
    restored = await api.call("POST", "/v1/revocations", 200, as_=ADMIN, json_body={**body, "restore": True})
    assert restored["revoked"] is False
    await api.call("POST", "/v1/revocations", 400, as_=ADMIN, json_body={**body, "restore": "yes"})
    await api.call("POST", "/v1/revocations", 401, json_body=body)
    await api.call("POST", "/v1/revocations", 403, as_=NOTARY, json_body=body)
    await api.call("POST", "/v1/revocations", 413, as_=ADMIN, json_body={**body, "reason": "x" * 20_000})
    await api.call("POST", "/v1/revocations", 415, as_=ADMIN, data="type=x", content_type="text/plain")
    kind = await api.call("POST", "/v1/revocations", 422, as_=ADMIN, json_body={**body, "type": "fishing-licence"})
    assert kind["field"] == "type"
    assert "employment-cert" in kind["allowed"]
    province = await api.call("POST", "/v1/revocations", 422, as_=ADMIN, json_body={**body, "province": "GZ"})
    assert (province["field"], province["allowed"]) == ("province", ["SC", "CQ"])


async def stats(api: Api) -> None:
    """Statistics are for the administrator only."""
    token = api.scene.driving_licence("SC")
    await api.call(
        "POST", "/v1/scans", 200, as_=NOTARY, json_body={"token": token, "scenario": "notary-driving-licence"}
    )
    figures = await api.call("GET", "/v1/stats", 200, as_=ADMIN)
    assert figures["by_route"]["SC->CQ"]["accepted"] >= 1
    await api.call("GET", "/v1/stats", 401)
    await api.call("GET", "/v1/stats", 403, as_=NOTARY)


async def public_documents(api: Api) -> None:
    """Catalogue, trust list, liveness, readiness and metrics answer as documented."""
    catalogue = await api.call("GET", "/v1/catalogue", 200)
    assert catalogue == json.loads(json.dumps(catalogue_document(api.scene.catalogue)))
    trust = await api.call("GET", "/v1/trust-list", 200)
    assert {k["kid"] for k in trust["keys"]} == {k.kid for k in api.scene.keyring.keys}
    assert (await api.call("GET", "/healthz", 200)) == {"status": "ok"}
    ready = await api.call("GET", "/readyz", 200)
    assert ready["keys"] == len(api.scene.keyring.keys)
    text = await api.call("GET", "/metrics", 200)
    assert "# TYPE verifier_scans_total counter" in text


async def store_down(api: Api) -> None:
    """With the store unreachable every stateful call is a 503 problem with Retry-After, never a decision."""
    token = api.scene.driving_licence("SC")
    body = {"token": token, "scenario": "notary-driving-licence"}
    first = await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body=body)
    api.store.down = True
    try:
        await api.call("POST", "/v1/scans", 503, as_=NOTARY, json_body=body)
        fresh = {**body, "token": api.scene.driving_licence("CQ")}
        await api.call("POST", "/v1/scans", 503, as_=NOTARY, json_body=fresh)
        await api.call("GET", f"/v1/scans/{first['scan_id']}", 503, path="/v1/scans/{scan_id}", as_=NOTARY)
        revocation = {"type": "driving-licence", "province": "SC", "licence_no": citizen_id(123456)}
        await api.call("POST", "/v1/revocations", 503, as_=ADMIN, json_body=revocation)
        await api.call("GET", "/v1/stats", 503, as_=ADMIN)
        await api.call("GET", "/readyz", 503)
    finally:
        api.store.down = False
    await api.call("GET", "/readyz", 200)


async def no_trust_list(api: Api) -> None:
    """Without any trusted key the service is not ready."""
    source = api.client.app[appkeys.SERVICE].trust
    kept = source.current
    source.current = TrustList({})
    try:
        problem = await api.call("GET", "/readyz", 503)
        assert "trust list" in problem["detail"]
    finally:
        source.current = kept


async def scans_held_back(api: Api) -> None:
    """A counter over its rate is a 429 with Retry-After; a scan before any trust list is loaded a 503."""
    service = api.client.app[appkeys.SERVICE]
    body = {"token": api.scene.driving_licence("SC"), "scenario": "notary-driving-licence"}
    for error, status in ((RateLimitedError(NOTARY, 0.25), 429), (TrustNotLoadedError("no trust list yet"), 503)):

        async def refuse(*args: Any, error: Exception = error, **kwargs: Any) -> Any:
            raise error

        service.scan = refuse  # type: ignore[method-assign]
        try:
            await api.call("POST", "/v1/scans", status, as_=NOTARY, json_body=body)
        finally:
            del service.scan


async def pages(api: Api) -> None:
    """The signed-in counter, the console, the dashboard and their files answer as documented."""
    me = await api.call("GET", "/v1/counters/me", 200, as_=NOTARY)
    assert [s["code"] for s in me["scenarios"]] == ["notary-driving-licence"]
    await api.call("GET", "/v1/counters/me", 401, as_=ADMIN)
    for page in ("/console", "/dashboard"):
        assert "川渝电子证照亮证互认" in await api.call("GET", page, 200)
    template = "/static/{name}"
    for name in ("console.js", "common.css", "vendor/jsqr/LICENSE"):
        await api.call("GET", f"/static/{name}", 200, path=template)
    await api.call("GET", "/static/nothing.js", 404, path=template)


async def rules_reload(api: Api) -> None:
    """The administrator reloads data/; a broken copy is refused with each problem named, the rules in use stay."""
    done = await api.call("POST", "/v1/admin/reload", 200, as_=ADMIN)
    assert done["licence_types"] == len(api.scene.catalogue.licences)
    await api.call("POST", "/v1/admin/reload", 401)
    await api.call("POST", "/v1/admin/reload", 403, as_=NOTARY)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as env:
        broken = Path(tmp) / "data"
        shutil.copytree(data_dir(), broken)
        (broken / "channels.toml").write_text("[[channel]\n", encoding="utf-8")
        env.setenv("VERIFIER_DATA_DIR", str(broken))
        refused = await api.call("POST", "/v1/admin/reload", 422, as_=ADMIN)
    assert [p for p in refused["problems"] if p.startswith("data/channels.toml")], refused


async def audit_readings(api: Api) -> None:
    """The report as JSON and as CSV, and a holder's usage log, once the writer has written a scan; refused
    parameters, keys and a trail out of reach answer as documented."""
    token = api.scene.driving_licence("SC", holder="张三", licence_no=citizen_id(123457))
    body = {"token": token, "scenario": "notary-driving-licence", "item": 22}
    await api.call("POST", "/v1/scans", 200, as_=NOTARY, json_body=body)
    for _ in range(200):  # the writer rests half a second when it finds nothing
        if not await api.store.backlog():
            break
        await asyncio.sleep(0.05)
    report = await api.call("GET", "/v1/reports?by=day,type,item,reason", 200, as_=ADMIN)
    assert {(row["type"], row["item"]) for row in report["rows"]} >= {("driving-licence", 22)}
    text = await api.call("GET", "/v1/reports?by=type,decision", 200, as_=ADMIN, accept="text/csv")
    assert text.startswith("type,decision,answers,")
    assert (await api.call("GET", "/v1/reports?by=colour", 400, as_=ADMIN))["field"] == "by"
    assert (await api.call("GET", "/v1/reports?from=March", 400, as_=ADMIN))["field"] == "from"
    await api.call("GET", "/v1/reports", 401)
    await api.call("GET", "/v1/reports", 403, as_=NOTARY)
    app = "@app:jiaoguan-12123"
    uses = await api.call("GET", f"/v1/uses?sub={split(token)[1]['sub']}", 200, as_=app)
    assert [(use["licence"]["type"], use["item"]["seq"]) for use in uses["uses"]] == [("driving-licence", 22)]
    assert (await api.call("GET", "/v1/uses", 400, as_=app))["field"] == "sub"
    await api.call("GET", "/v1/uses?sub=abcdefgh", 401)
    await api.call("GET", "/v1/uses?sub=abcdefgh", 403, as_=ADMIN)
    trail = api.client.app[appkeys.TRAIL]

    async def away(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, OSError("connection refused (test)"))

    trail.report = away  # type: ignore[method-assign]
    trail.uses = away  # type: ignore[method-assign]
    try:
        await api.call("GET", "/v1/reports", 503, as_=ADMIN)
        await api.call("GET", "/v1/uses?sub=abcdefgh", 503, as_=app)
    finally:
        del trail.report, trail.uses


EXERCISES = [
    scans_decide,
    scans_refuse,
    scans_held_back,
    revocations,
    stats,
    public_documents,
    store_down,
    no_trust_list,
    pages,
    rules_reload,
    audit_readings,
]


# --- the tests ----------------------------------------------------------------------------------------


def test_document_is_openapi_3_1_with_the_2020_12_dialect() -> None:
    """schemas/openapi.json passes the OpenAPI 3.1 validator and declares JSON Schema 2020-12."""
    assert SPEC["openapi"].startswith("3.1.")
    assert SPEC["jsonSchemaDialect"] == "https://json-schema.org/draft/2020-12/schema"
    validate_openapi(SPEC, cls=OpenAPIV31SpecValidator)


def test_every_operation_documents_responses_and_every_ref_resolves() -> None:
    """Each operation has a 2xx and a default response, and every $ref in the document resolves."""
    for path, method, op in _operations():
        statuses = set(op["responses"])
        assert any(s.startswith("2") for s in statuses), (path, method)
        assert "default" in statuses, (path, method)
        assert op.get("operationId"), (path, method)
    refs = set(_refs(SPEC))
    assert refs, "the document uses no references at all"
    resolver = REGISTRY.resolver(BASE)
    for ref in refs:
        assert ref.startswith("#/"), ref
        assert resolver.lookup(ref).contents is not None, ref


def test_component_schemas_are_valid_2020_12_schemas() -> None:
    """Every component schema is itself a valid JSON Schema 2020-12 document."""
    for name in SPEC["components"]["schemas"]:
        _validator(_pointer("components", "schemas", name)).check_schema(SPEC["components"]["schemas"][name])


def test_reason_codes_are_exactly_those_of_verifier_reasons() -> None:
    """The ReasonCode enum lists every code of verifier.core.reasons.MESSAGES, and nothing else."""
    assert SPEC["components"]["schemas"]["ReasonCode"]["enum"] == list(MESSAGES)


def test_security_is_counter_key_for_scans_and_admin_key_for_admin_routes() -> None:
    """Scans need a counter bearer key, revocations, stats and reports the admin bearer key, the usage log an
    app's, the rest none."""
    schemes = SPEC["components"]["securitySchemes"]
    assert all(s == {**s, "type": "http", "scheme": "bearer"} for s in schemes.values())
    security = {(p, m): op.get("security") for p, m, op in _operations()}
    assert security[("/v1/scans", "post")] == [{"counterKey": []}]
    assert security[("/v1/scans/{scan_id}", "get")] == [{"counterKey": []}]
    assert security[("/v1/revocations", "post")] == [{"adminKey": []}]
    assert security[("/v1/stats", "get")] == [{"adminKey": []}]
    assert security[("/v1/admin/reload", "post")] == [{"adminKey": []}]
    assert security[("/v1/reports", "get")] == [{"adminKey": []}]
    assert security[("/v1/uses", "get")] == [{"appKey": []}]
    assert security[("/v1/catalogue", "get")] == []


def test_examples_match_their_schemas() -> None:
    """Every example in the document is valid against the schema it illustrates."""
    checked = 0
    for path, method, op in _operations():
        where = ("paths", path, method)
        media: list[tuple[tuple[str, ...], Any]] = [
            (("requestBody", "content", "application/json"), op.get("requestBody", {}).get("content", {}))
        ]
        media += [
            (("responses", s, "content", "application/json"), r.get("content", {})) for s, r in op["responses"].items()
        ]
        for parts, content in media:
            entry = content.get("application/json", {})
            examples = [entry["example"]] if "example" in entry else []
            examples += [e["value"] for e in entry.get("examples", {}).values()]
            for example in examples:
                assert _errors(_pointer(*where, *parts, "schema"), example) == []
                checked += 1
    assert checked >= 3


def test_the_schemas_have_teeth() -> None:
    """A decision with an extra member, an accepted one with reasons, or a problem with an extra member or a detail
    in one language only fails."""
    example = SPEC["paths"]["/v1/scans"]["post"]["responses"]["200"]["content"]["application/json"]["examples"]
    accepted = example["accepted"]["value"]
    decision = _pointer("components", "schemas", "Decision")
    assert _errors(decision, accepted) == []
    assert _errors(decision, {**accepted, "token": "eyJ…"})
    assert _errors(decision, {**accepted, "reasons": example["replayed"]["value"]["reasons"]})
    assert _errors(decision, {**accepted, "licence": None})
    assert _errors(decision, {**accepted, "decision": "rejected"})
    assert _errors(decision, {**accepted, "checked_at": "yesterday"})
    assert _errors(decision, {**accepted, "licence": {**accepted["licence"], "licence_no_full": "510100123456"}})
    problem = _pointer("components", "schemas", "Problem")
    base = {"type": "https://cy-licence.example/problems/not-found", "title": "未找到 / Not found", "status": 404,
            "detail": "没有这个地址 / no such path"}  # fmt: skip
    assert _errors(problem, base) == []
    assert _errors(problem, {**base, "trace": "Traceback"})
    assert _errors(problem, {**base, "detail": "no such path"})
    assert _errors(problem, {**base, "detail": "没有这个地址"})
    assert _errors(problem, {**base, "title": "Not found"})


async def test_routes_are_exactly_the_documented_operations(api: Api) -> None:
    """The app's router serves exactly the paths and methods the document describes."""
    served = {
        (route.resource.canonical, route.method.lower())
        for route in api.client.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert served == {(p, m) for p, m, _ in _operations()}


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.__name__)
async def test_answers_match_the_document(api: Api, exercise: Callable[[Api], Awaitable[None]]) -> None:
    """Each group of calls answers with the status, content type, headers and body schema the document gives."""
    await exercise(api)
    assert api.seen


async def test_every_documented_response_is_produced(api: Api) -> None:
    """Together the exercises produce every (path, method, status) the document lists, on one app."""
    for exercise in EXERCISES:
        await exercise(api)
    assert _documented() - api.seen == set()
    assert api.seen - _documented() == set()
