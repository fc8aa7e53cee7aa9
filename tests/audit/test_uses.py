"""GET /v1/uses over the known scans (tests/audit/known.py), on SQLite and on PostgreSQL: a holder's uses of the
licences shown through the asking app, newest first, first answers only, nothing about the clerk; another
app's holders are invisible; only an app's key reads it, and the sub is never logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.audit.known import OPERATOR, SERIAL, STEPS, Known
from tests.helpers import Client, ClientFactory, assert_problem
from tests.redis_server import free_port
from verifier.adapters.api_keys import app_principal
from verifier.adapters.memory_store import MemoryStore
from verifier.core.catalogue import Catalogue
from verifier.core.reasons import MESSAGES
from verifier.service.settings import Settings


@pytest.fixture
async def client(aiohttp_client: ClientFactory, known: Known) -> Client:
    """A service reading the known trail."""
    return await aiohttp_client(known.scene.app(known.settings(), store=MemoryStore()))


async def uses(client: Client, known: Known, app: str, licence: str) -> list[dict[str, Any]]:
    """GET /v1/uses as ``app`` for the holder of ``licence``: its uses."""
    headers = known.scene.auth(app_principal(app))
    async with client.get("/v1/uses", params={"sub": known.subs[licence]}, headers=headers) as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
    assert body["channel"] == app
    found: list[dict[str, Any]] = body["uses"]
    return found


async def test_a_holders_uses_newest_first_without_the_re_scan(
    client: Client, known: Known, catalogue: Catalogue
) -> None:
    """The driving licence shown through 交管12123: the replay at the second notary counter, then the first
    acceptance — the re-scan at the same counter is the same use — each with the institution's name, the
    business and its item, the licence's name and the decision with its reasons in both languages."""
    found = await uses(client, known, "jiaoguan-12123", "dl-A")
    replay, first = (step for step in reversed(STEPS) if step.licence == "dl-A" and not step.cached)
    notary = catalogue.institutions["cq-notary-zhixin"].name_zh
    item = {"seq": 22, "name_zh": catalogue.items[22].name_zh}
    scenario = {"code": "notary-driving-licence", "name_zh": catalogue.scenarios["notary-driving-licence"].name_zh}
    licence = {"type": "driving-licence", "name_zh": "中华人民共和国机动车驾驶证"}
    zh, en = MESSAGES["REPLAYED"]
    assert found == [
        {"at": replay.at.isoformat(), "institution": notary, "scenario": scenario, "item": item, "licence": licence,
         "decision": "rejected", "reasons": [{"code": "REPLAYED", "message_zh": zh, "message_en": en}]},
        {"at": first.at.isoformat(), "institution": notary, "scenario": scenario, "item": item, "licence": licence,
         "decision": "accepted", "reasons": []},
    ]  # fmt: skip


async def test_nothing_about_the_clerk(client: Client, known: Known) -> None:
    """No counter, operator, serial number or scan id in a use, though every scan carried them."""
    found = await uses(client, known, "sichuan-renshe", "social-E")
    assert [use["decision"] for use in found] == ["accepted", "rejected"]
    for use in found:
        assert set(use) == {"at", "institution", "scenario", "item", "licence", "decision", "reasons"}
    text = repr(found)
    for clerk in (OPERATOR, SERIAL, "cq-employment-01", "sc-social-insurance-01", "counter", "operator", "serial"):
        assert clerk not in text


async def test_another_apps_holders_are_invisible(client: Client, known: Known) -> None:
    """One social security card shown through 四川人社 and through 天府通办 has one sub: each app sees only the uses
    shown through itself; and an app asking for a holder of another app's licence sees none."""
    renshe = await uses(client, known, "sichuan-renshe", "social-E")
    tianfu = await uses(client, known, "tianfu-tongban", "social-E2")
    assert known.subs["social-E"] == known.subs["social-E2"]
    assert len(renshe) == 2
    assert [use["at"] for use in tianfu] == [next(s.at.isoformat() for s in STEPS if s.licence == "social-E2")]
    assert await uses(client, known, "tianfu-tongban", "dl-A") == []
    assert await uses(client, known, "yukuaiban", "library-C") == []
    assert len(await uses(client, known, "tianfu-tongban", "library-C")) == 1


async def test_only_an_apps_key_reads_the_log(client: Client, known: Known) -> None:
    """No key is 401; a counter's or the administrator's key is 403; an app's key without a sub is 400."""
    query = {"sub": known.subs["dl-A"]}
    async with client.get("/v1/uses", params=query) as response:
        await assert_problem(response, 401)
    for who in ("cq-notary-zhixin-01", "@admin", "@app:no-such-app"):
        async with client.get("/v1/uses", params=query, headers=known.scene.auth(who)) as response:
            await assert_problem(response, 403)
    for bad in ("", "?sub=", "?sub=" + "x" * 65, f"?sub={query['sub']}&sub=abcdefgh"):
        headers = known.scene.auth(app_principal("jiaoguan-12123"))
        async with client.get("/v1/uses" + bad, headers=headers) as response:
            assert (await assert_problem(response, 400, "sub"))["field"] == "sub"


async def test_the_sub_is_never_logged(
    client: Client, aiohttp_client: ClientFactory, known: Known, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing the service logs while answering, refusing or failing on the usage log holds the sub. (The test
    client's access log aside: the service writes none, as tests/cli/test_report_cli.py sees it run.)"""
    sub = known.subs["dl-A"]
    caplog.set_level(logging.DEBUG)
    await uses(client, known, "jiaoguan-12123", "dl-A")
    async with client.get("/v1/uses", params={"sub": sub}, headers=known.scene.admin()) as response:
        assert response.status == 403
    away = Settings(audit_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x", separate_audit_writer=True)
    failing = await aiohttp_client(known.scene.app(away, store=MemoryStore()))
    headers = known.scene.auth(app_principal("jiaoguan-12123"))
    async with failing.get("/v1/uses", params={"sub": sub}, headers=headers) as response:
        await assert_problem(response, 503)
    assert [r for r in caplog.records if r.name == "verifier" and "audit trail" in r.getMessage()]
    assert [r.getMessage() for r in caplog.records if r.name != "aiohttp.access" and sub in r.getMessage()] == []
