"""The HTTP shell of the scan service on the embedded store: what a scan records and logs, metrics,
readiness, errors as problem+json, revocation of cached acceptances, and statistics."""

from __future__ import annotations

import json
import logging
from typing import Any
from unittest.mock import ANY

import pytest

from tests.helpers import Client, ClientFactory, assert_problem
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.errors import StoreUnavailableError
from verifier.issuer.mint import citizen_id
from verifier.web.metrics import metric_total

NOTARY = "cq-notary-zhixin-01"
NOTARY_2 = "cq-notary-zhixin-02"
DRIVING = "notary-driving-licence"


class Shell:
    """A client of the verifier app with the scene that minted its tokens and keys."""

    def __init__(self, client: Client, scene: Scene, store: MemoryStore) -> None:
        self.client = client
        self.scene = scene
        self.store = store

    async def scan(self, counter: str, token: str, scenario: str = DRIVING, **extra: Any) -> dict[str, Any]:
        """POST /v1/scans as ``counter``; the decision object."""
        body = {"token": token, "scenario": scenario, **extra}
        response = await self.client.post("/v1/scans", json=body, headers=self.scene.auth(counter))
        assert response.status == 200, await response.text()
        decision: dict[str, Any] = await response.json()
        return decision

    async def revoke(self, **body: Any) -> dict[str, Any]:
        """POST /v1/revocations with the admin key."""
        response = await self.client.post("/v1/revocations", json=body, headers=self.scene.admin())
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    async def stats(self) -> dict[str, Any]:
        """GET /v1/stats with the admin key."""
        response = await self.client.get("/v1/stats", headers=self.scene.admin())
        assert response.status == 200
        figures: dict[str, Any] = await response.json()
        return figures


class DownStore(MemoryStore):
    """An embedded store that cannot be reached."""

    async def lookup(self, tag: str, counter: str, digest: str, licence_id: str, *, rate: Any, operator: Any) -> Any:
        """Unreachable."""
        raise StoreUnavailableError("connection refused (test)")

    async def note(self, tag: str, record: Any, rate: Any) -> None:
        """Unreachable."""
        raise StoreUnavailableError("connection refused (test)")

    async def commit(self, commit: Any) -> Any:
        """Unreachable."""
        raise StoreUnavailableError("connection refused (test)")


@pytest.fixture
async def shell(aiohttp_client: ClientFactory, scene: Scene) -> Shell:
    """The verifier app on the embedded store."""
    store = MemoryStore()
    return Shell(await aiohttp_client(scene.app(store=store)), scene, store)


async def test_a_scan_is_stored_with_operator_and_serial_no_for_its_counter_only(shell: Shell) -> None:
    """GET /v1/scans/{id} gives the counter its decision again; the record keeps operator and serial; others get 404."""
    token = shell.scene.driving_licence("SC")
    decision = await shell.scan(NOTARY, token, operator="clerk-017", serial_no="CQGZ-20260601-0001")
    assert decision["decision"] == "accepted"
    found = await shell.store.get_scan(decision["scan_id"])
    assert found is not None
    record = found[0]
    assert (record.counter, record.operator, record.serial_no) == (NOTARY, "clerk-017", "CQGZ-20260601-0001")
    mine = await shell.client.get(f"/v1/scans/{decision['scan_id']}", headers=shell.scene.auth(NOTARY))
    assert mine.status == 200
    assert await mine.json() == decision
    theirs = await shell.client.get(f"/v1/scans/{decision['scan_id']}", headers=shell.scene.auth(NOTARY_2))
    problem = await assert_problem(theirs, 404)
    assert decision["scan_id"] not in json.dumps(problem)


async def test_a_replayed_scan_is_read_back_as_rejected(shell: Shell) -> None:
    """The second counter's scan of a used token reads back as REPLAYED, as it was answered."""
    token = shell.scene.driving_licence("SC")
    await shell.scan(NOTARY, token)
    replay = await shell.scan(NOTARY_2, token)
    again = await shell.client.get(f"/v1/scans/{replay['scan_id']}", headers=shell.scene.auth(NOTARY_2))
    assert (await again.json())["reasons"][0]["code"] == "REPLAYED"


async def test_scan_log_is_one_json_line_per_scan_without_token_number_or_name(
    shell: Shell, caplog: pytest.LogCaptureFixture
) -> None:
    """Each scan logs one JSON line with who, what and the outcome, and never the token, licence number or holder."""
    caplog.set_level(logging.INFO, logger="verifier.scan")
    holder, number = "欧阳娜娜", citizen_id(123456)
    token = shell.scene.driving_licence("SC", holder=holder, licence_no=number)
    first = await shell.scan(NOTARY, token, operator="clerk-017", serial_no="S-1")
    second = await shell.scan(NOTARY, token, operator="clerk-018", serial_no="S-1")
    lines = [r.getMessage() for r in caplog.records if r.name == "verifier.scan"]
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    assert entries[0] == {
        "event": "scan",
        "scan_id": first["scan_id"],
        "counter": NOTARY,
        "counter_province": "CQ",
        "operator": "clerk-017",
        "serial_no": "S-1",
        "scenario": DRIVING,
        "item": None,
        "type": "driving-licence",
        "issuing_province": "SC",
        "decision": "accepted",
        "reasons": [],
        "cached": False,
        "ms": entries[0]["ms"],
    }
    assert isinstance(entries[0]["ms"], float | int)
    assert (entries[1]["scan_id"], entries[1]["cached"], entries[1]["operator"]) == (
        second["scan_id"],
        True,
        "clerk-018",
    )
    everything = caplog.text + "".join(lines)
    for secret in (token, token.split(".")[2], number, holder):
        assert secret not in everything
    assert number not in json.dumps(first, ensure_ascii=False)
    assert first["licence"]["holder"] == "欧阳**"


async def test_a_rejected_scan_logs_its_reason_codes(shell: Shell, caplog: pytest.LogCaptureFixture) -> None:
    """A rejection's log line names its reason codes and no licence."""
    caplog.set_level(logging.INFO, logger="verifier.scan")
    await shell.scan(NOTARY, "not-a-token")
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "verifier.scan"]
    assert (line["decision"], line["reasons"], line["type"]) == ("rejected", ["TOKEN_MALFORMED"], "-")


async def test_metrics_count_scans_by_decision_and_cache_hits(shell: Shell) -> None:
    """/metrics counts accepted and rejected scans and the re-scans answered from the cache."""
    token = shell.scene.driving_licence("SC")
    await shell.scan(NOTARY, token)
    await shell.scan(NOTARY, token)
    await shell.scan(NOTARY_2, token)
    response = await shell.client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert metric_total(text, "verifier_scans_total", decision="accepted") == 2
    assert metric_total(text, "verifier_scans_total", decision="rejected") == 1
    assert metric_total(text, "verifier_cache_hits_total") == 1
    assert metric_total(text, "verifier_scan_seconds_count") == 3
    assert metric_total(text, "verifier_store_errors_total") == 0


async def test_readyz_is_ready_with_the_trust_list_and_the_embedded_store(shell: Shell) -> None:
    """/readyz answers 200 naming the number of trusted keys and the embedded store; /healthz answers ok."""
    response = await shell.client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body == {"status": "ready", "keys": len(shell.scene.keyring.keys), "store": "MemoryStore", "audit": ANY}
    assert body["audit"]["writer"] == "this instance"
    assert body["audit"]["failing_since"] is None
    assert isinstance(body["audit"]["backlog"], int)
    health = await shell.client.get("/healthz")
    assert (health.status, await health.json()) == (200, {"status": "ok"})


async def test_an_unknown_route_is_a_404_problem(shell: Shell) -> None:
    """A path the service does not serve answers 404 as problem+json, not aiohttp's text page."""
    problem = await assert_problem(await shell.client.get("/v1/nothing-here"), 404)
    assert problem["type"].endswith("/not-found")


async def test_a_wrong_method_is_a_405_problem_with_allow(shell: Shell) -> None:
    """DELETE /v1/scans answers 405 as problem+json with an Allow header naming POST."""
    response = await shell.client.delete("/v1/scans", headers=shell.scene.auth(NOTARY))
    problem = await assert_problem(response, 405)
    assert problem["type"].endswith("/method-not-allowed")
    assert "POST" in response.headers["Allow"]


async def test_an_unreachable_store_is_503_and_counted_never_a_decision(
    aiohttp_client: ClientFactory, scene: Scene
) -> None:
    """With the store down a scan answers 503 with Retry-After, and /metrics counts a store error."""
    client = await aiohttp_client(scene.app(store=DownStore()))
    body = {"token": scene.driving_licence("SC"), "scenario": DRIVING}
    response = await client.post("/v1/scans", json=body, headers=scene.auth(NOTARY))
    problem = await assert_problem(response, 503)
    assert "decision" not in problem
    assert response.headers["Retry-After"] == "2"
    text = await (await client.get("/metrics")).text()
    assert metric_total(text, "verifier_store_errors_total") == 1
    assert metric_total(text, "verifier_scans_total", decision="accepted") == 0


async def test_revocation_stops_a_cached_acceptance_and_restore_undoes_it(shell: Shell) -> None:
    """A revoked licence's cached acceptance re-scans as REVOKED; after restore a new token of it is accepted."""
    number = citizen_id(654321)
    token = shell.scene.driving_licence("SC", licence_no=number)
    assert (await shell.scan(NOTARY, token))["decision"] == "accepted"
    revoked = await shell.revoke(type="driving-licence", province="SC", licence_no=number, reason="吊销")
    assert revoked["revoked"] is True
    rescan = await shell.scan(NOTARY, token)
    assert (rescan["decision"], rescan["cached"]) == ("rejected", True)
    assert [r["code"] for r in rescan["reasons"]] == ["REVOKED"]
    while_revoked = await shell.scan(NOTARY, shell.scene.driving_licence("SC", licence_no=number))
    assert (while_revoked["decision"], while_revoked["cached"]) == ("rejected", False)
    assert [r["code"] for r in while_revoked["reasons"]] == ["REVOKED"]
    other = await shell.scan(NOTARY, shell.scene.driving_licence("SC", licence_no=citizen_id(1)))
    assert other["decision"] == "accepted"
    restored = await shell.revoke(type="driving-licence", province="SC", licence_no=number, restore=True)
    assert restored["revoked"] is False
    fresh = await shell.scan(NOTARY, shell.scene.driving_licence("SC", licence_no=number))
    assert (fresh["decision"], fresh["reasons"]) == ("accepted", [])


async def test_a_revocation_needs_the_admin_key(shell: Shell) -> None:
    """A counter key cannot revoke (403), and the licence stays accepted."""
    number = citizen_id(777777)
    body = {"type": "driving-licence", "province": "SC", "licence_no": number}
    response = await shell.client.post("/v1/revocations", json=body, headers=shell.scene.auth(NOTARY))
    await assert_problem(response, 403)
    decision = await shell.scan(NOTARY, shell.scene.driving_licence("SC", licence_no=number))
    assert decision["decision"] == "accepted"


async def test_stats_count_by_type_provinces_route_decision_and_reason(shell: Shell) -> None:
    """/v1/stats counts every answer by type, issuing and counter province, route, decision and reason; re-scans
    are answers too, also counted apart."""
    dl = shell.scene.driving_licence("SC")
    lawyer = shell.scene.apps["yukuaiban"].present("lawyer-licence", "CQ").token
    await shell.scan(NOTARY, dl)  # SC->CQ accepted
    await shell.scan(NOTARY, dl)  # re-scan: counted apart
    await shell.scan(NOTARY_2, dl)  # SC->CQ rejected, REPLAYED
    await shell.scan("sc-justice-dept-01", lawyer, "justice-admin")  # CQ->SC accepted
    await shell.scan(NOTARY, "not-a-token")  # unknown type, TOKEN_MALFORMED
    figures = await shell.stats()
    assert figures["total"] == {"accepted": 3, "rejected": 2, "scans": 5, "acceptance_rate": 0.6}
    assert figures["rescans"] == 1
    assert figures["by_kind"] == {"first": {"accepted": 2, "rejected": 2}, "rescan": {"accepted": 1, "rejected": 0}}
    assert figures["by_type"] == {
        "-": {"accepted": 0, "rejected": 1},
        "driving-licence": {"accepted": 2, "rejected": 1},
        "lawyer-licence": {"accepted": 1, "rejected": 0},
    }
    assert figures["by_issuing_province"] == {
        "-": {"accepted": 0, "rejected": 1},
        "CQ": {"accepted": 1, "rejected": 0},
        "SC": {"accepted": 2, "rejected": 1},
    }
    assert figures["by_counter_province"] == {
        "CQ": {"accepted": 2, "rejected": 2},
        "SC": {"accepted": 1, "rejected": 0},
    }
    assert figures["by_route"] == {
        "-->CQ": {"accepted": 0, "rejected": 1},
        "CQ->SC": {"accepted": 1, "rejected": 0},
        "SC->CQ": {"accepted": 2, "rejected": 1},
    }
    assert figures["by_scenario"][DRIVING] == {"accepted": 2, "rejected": 2}
    assert figures["by_reason"] == {"REPLAYED": 1, "TOKEN_MALFORMED": 1}
    assert figures["reasons_by_type"] == {"-": {"TOKEN_MALFORMED": 1}, "driving-licence": {"REPLAYED": 1}}
    assert sum(m["accepted"] + m["rejected"] for m in figures["per_minute"]) == 5
    assert sum(r["count"] for r in figures["rows"]) == 5


async def test_stats_need_the_admin_key(shell: Shell) -> None:
    """A counter's key gets 403 on /v1/stats and no key gets 401."""
    await assert_problem(await shell.client.get("/v1/stats", headers=shell.scene.auth(NOTARY)), 403)
    response = await shell.client.get("/v1/stats")
    await assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_rescan_for_another_scenario_is_decided_for_that_scenario(shell: Shell) -> None:
    """A token accepted for one business is not accepted from the cache for a business its licence does not serve."""
    token = shell.scene.apps["chongqing-renshe"].present("employment-cert", "CQ").token
    first = await shell.scan("sc-employment-01", token, "employment-subsidy")
    assert first["decision"] == "accepted"
    other = await shell.scan("sc-employment-01", token, "unemployment-registration")
    assert [r["code"] for r in other["reasons"]] == ["SCENARIO_NOT_FOR_LICENCE"]
