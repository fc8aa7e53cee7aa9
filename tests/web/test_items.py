"""The 川渝通办 item (事项) on a scan: ``item`` in ``POST /v1/scans`` is one of the scenario's items or the
scan is refused before anything is decided, and ``/v1/counters/me`` tells the console which items each
business offers."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.helpers import Client, assert_problem
from tests.scenes import Scene

NOTARY = "cq-notary-zhixin-01"
DRIVING = "notary-driving-licence"
EMPLOYMENT = "sc-employment-01"


async def _post(client: Client, scene: Scene, counter: str, body: dict[str, Any]) -> Any:
    return await client.post("/v1/scans", json=body, headers=scene.auth(counter))


async def test_an_item_of_the_business_is_taken_and_logged(
    client: Client, scene: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 22 (机动车驾驶证公证) with the notary business is decided as usual, and the scan's log line names it."""
    caplog.set_level(logging.INFO, logger="verifier.scan")
    body = {"token": scene.driving_licence("SC"), "scenario": DRIVING, "item": 22}
    response = await _post(client, scene, NOTARY, body)
    assert response.status == 200, await response.text()
    assert (await response.json())["decision"] == "accepted"
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "verifier.scan"]
    assert line["item"] == "22"
    assert line["scenario"] == DRIVING


async def test_a_scan_without_item_logs_none(client: Client, scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    """``item`` is optional: absent or null, the scan is decided and its log line has no item."""
    caplog.set_level(logging.INFO, logger="verifier.scan")
    for extra in ({}, {"item": None}):
        body = {"token": scene.driving_licence("SC"), "scenario": DRIVING, **extra}
        response = await _post(client, scene, NOTARY, body)
        assert response.status == 200, await response.text()
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "verifier.scan"]
    assert [line["item"] for line in lines] == [None, None]


async def test_an_item_of_another_business_is_refused_naming_the_allowed_ones(client: Client, scene: Scene) -> None:
    """Item 44 belongs to the employment business, not to notarisation: 422 naming item 22 as the one allowed."""
    body = {"token": scene.driving_licence("SC"), "scenario": DRIVING, "item": 44}
    problem = await assert_problem(await _post(client, scene, NOTARY, body), 422, "44", DRIVING)
    assert problem["field"] == "item"
    assert problem["allowed"] == [22]


async def test_a_business_without_items_refuses_any_item(client: Client, scene: Scene) -> None:
    """The lawyer's business has no 川渝通办 item: any item is refused, with an empty ``allowed``."""
    token = scene.apps["yukuaiban"].present("lawyer-licence", "CQ").token
    body = {"token": token, "scenario": "justice-admin", "item": 22}
    problem = await assert_problem(await _post(client, scene, "sc-justice-dept-01", body), 422, "justice-admin")
    assert problem["field"] == "item"
    assert problem["allowed"] == []
    assert "无川渝通办事项" in problem["detail"]


@pytest.mark.parametrize(
    "value", ["22", True, 22.0, [22], {"item": 22}], ids=["string", "bool", "float", "list", "object"]
)
async def test_an_item_that_is_not_an_integer_is_a_bad_request(client: Client, scene: Scene, value: object) -> None:
    """``item`` is the item's number: text, a boolean, a float or a structure is refused with 400 naming the field."""
    body = {"token": scene.driving_licence("SC"), "scenario": DRIVING, "item": value}
    problem = await assert_problem(await _post(client, scene, NOTARY, body), 400, "item")
    assert problem["field"] == "item"


@pytest.mark.parametrize("value", [0, -22, 96, 2**40], ids=["zero", "negative", "past-95", "large"])
async def test_a_number_outside_the_list_is_refused(client: Client, scene: Scene, value: int) -> None:
    """A number no item of the business has, within the list or not, is refused with 422."""
    body = {"token": scene.driving_licence("SC"), "scenario": DRIVING, "item": value}
    problem = await assert_problem(await _post(client, scene, NOTARY, body), 422)
    assert problem["allowed"] == [22]


async def test_an_unknown_scenario_is_named_before_the_item(client: Client, scene: Scene) -> None:
    """With an unknown scenario, the problem is the scenario, whatever the item."""
    body = {"token": scene.driving_licence("SC"), "scenario": "notary", "item": 22}
    problem = await assert_problem(await _post(client, scene, NOTARY, body), 422, "notary")
    assert problem["field"] == "scenario"


async def test_a_refused_item_uses_nothing_up(client: Client, scene: Scene) -> None:
    """A scan refused for its item decides nothing: the same code with the right item is then accepted, first time."""
    token = scene.driving_licence("SC")
    await assert_problem(await _post(client, scene, NOTARY, {"token": token, "scenario": DRIVING, "item": 44}), 422)
    response = await _post(client, scene, "cq-notary-zhixin-02", {"token": token, "scenario": DRIVING, "item": 22})
    decision = await response.json()
    assert decision["decision"] == "accepted"
    assert decision["cached"] is False


async def test_counters_me_lists_the_items_of_each_business(client: Client, scene: Scene) -> None:
    """The console learns which businesses offer items: employment subsidies item 44, the others none."""
    response = await client.get("/v1/counters/me", headers=scene.auth(EMPLOYMENT))
    assert response.status == 200
    scenarios = {s["code"]: s["items"] for s in (await response.json())["scenarios"]}
    assert scenarios == {
        "unemployment-registration": [],
        "employment-subsidy": [{"item": 44, "name_zh": "就业创业证查询、核验"}],
    }
    response = await client.get("/v1/counters/me", headers=scene.auth("sc-legal-service-chengdu-01"))
    scenarios = {s["code"]: s["items"] for s in (await response.json())["scenarios"]}
    assert scenarios == {DRIVING: [{"item": 22, "name_zh": "机动车驾驶证公证"}], "justice-admin": []}
