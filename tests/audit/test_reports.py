"""GET /v1/reports over the known scans (tests/audit/known.py), on SQLite and on PostgreSQL: every total of
every group, for several groupings, as JSON and as CSV; the period's days are China's; bad parameters are a
400 naming the field, and only the administrator reads a report."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest

from tests.audit.known import FIRST, LAST, STEPS, TODAY, Known, expected
from tests.helpers import Client, ClientFactory, assert_problem
from tests.redis_server import free_port
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.core.report import GROUPS
from verifier.service.settings import Settings

BY = [
    (),
    ("day",),
    ("decision",),
    ("type", "decision"),
    ("day", "city"),
    ("day", "type"),
    ("day", "reason"),
    ("province", "reason"),
    ("institution",),
    ("counter", "decision"),
    ("issuing_province", "scenario"),
    ("item",),
    ("month", "decision"),
]
MEASURES = ("answers", "first_scans", "accepted", "rejected")


@pytest.fixture
async def client(aiohttp_client: ClientFactory, known: Known) -> Client:
    """A service reading the known trail."""
    return await aiohttp_client(known.scene.app(known.settings(), store=MemoryStore()))


async def report(client: Client, known: Known, **query: str) -> dict[str, Any]:
    """GET /v1/reports as the administrator: its JSON."""
    async with client.get("/v1/reports", params=query, headers=known.scene.admin()) as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        return body


def tallied(rows: list[dict[str, Any]], by: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, int]]:
    """The report's rows as :func:`tests.audit.known.expected` counts them."""
    out = {tuple(row[name] for name in by): {m: row[m] for m in MEASURES} for row in rows}
    assert len(out) == len(rows), "a group is given twice"
    return out


@pytest.mark.parametrize("by", BY, ids=lambda by: ",".join(by) or "total")
async def test_every_total_of_the_known_scans(client: Client, known: Known, by: tuple[str, ...]) -> None:
    """Each group's answers, first scans, acceptances and rejections are those the known scans make, its
    acceptance rate their quotient, and the period's total the whole."""
    body = await report(client, known, **{"from": FIRST.isoformat(), "to": LAST.isoformat(), "by": ",".join(by)})
    assert (body["from"], body["to"], body["by"]) == (FIRST.isoformat(), LAST.isoformat(), list(by))
    assert tallied(body["rows"], by) == expected(by)
    for row in body["rows"]:
        assert set(row) == {*by, *MEASURES, "acceptance_rate"}
        assert row["acceptance_rate"] == round(row["accepted"] / row["answers"], 4)
    assert {m: body["total"][m] for m in MEASURES} == expected(())[()]


async def test_the_figures_read_as_counted_by_hand(client: Client, known: Known) -> None:
    """Twelve answers in the three days: eleven first scans and a re-scan, eight accepted; the answer at 01:30
    China time counts on its China day; the Chongqing notary's answers are the re-scan, the replay and the first."""
    total = (await report(client, known, **{"from": FIRST.isoformat(), "to": LAST.isoformat()}))["rows"]
    assert total == [{"answers": 12, "first_scans": 11, "accepted": 8, "rejected": 4, "acceptance_rate": 0.6667}]
    days = await report(client, known, **{"from": FIRST.isoformat(), "to": LAST.isoformat(), "by": "day"})
    assert [(row["day"], row["answers"]) for row in days["rows"]] == [
        (FIRST.isoformat(), 4),
        ((FIRST + timedelta(days=1)).isoformat(), 4),
        (LAST.isoformat(), 4),
    ]
    notary = await report(client, known, **{"from": FIRST.isoformat(), "to": LAST.isoformat(), "by": "institution"})
    zhixin = next(row for row in notary["rows"] if row["institution"] == "cq-notary-zhixin")
    assert (zhixin["answers"], zhixin["first_scans"], zhixin["accepted"]) == (3, 2, 2)


async def test_the_period_takes_its_first_and_last_days(client: Client, known: Known) -> None:
    """A period from ten days ago takes the older scan too; one of a single day takes that day only; without dates
    the last 30 days to today."""
    wide = await report(client, known, **{"from": STEPS[0].at.date().isoformat(), "to": LAST.isoformat()})
    assert wide["total"]["answers"] == len(STEPS)
    one = await report(client, known, **{"from": LAST.isoformat(), "to": LAST.isoformat()})
    assert one["total"]["answers"] == sum(1 for s in STEPS if s.at.date() == LAST)
    default = await report(client, known)
    assert (default["to"], default["total"]["answers"]) == (TODAY.isoformat(), len(STEPS))
    assert default["from"] == (TODAY - timedelta(days=29)).isoformat()


@pytest.mark.parametrize("by", [("type", "decision"), ("day", "reason"), ("city", "item")], ids=",".join)
async def test_csv_says_what_json_says(client: Client, known: Known, by: tuple[str, ...]) -> None:
    """With Accept: text/csv the report is UTF-8 CSV: a header row of the groups and the measures, then the JSON's
    rows in the JSON's order, an empty cell for a null."""
    query = {"from": FIRST.isoformat(), "to": LAST.isoformat(), "by": ",".join(by)}
    body = await report(client, known, **query)
    headers = {**known.scene.admin(), "Accept": "text/csv"}
    async with client.get("/v1/reports", params=query, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        text = await response.text()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == [*by, *MEASURES, "acceptance_rate"]
    as_text = [["" if row[name] is None else str(row[name]) for name in table[0]] for row in body["rows"]]
    assert table[1:] == as_text
    assert len(table) == len(expected(by)) + 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"by": "colour"}, "by"),
        ({"by": "day,day"}, "by"),
        ({"by": "day,licence"}, "by"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
    ],
    ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v,
)
async def test_a_bad_parameter_is_400_naming_it(
    client: Client, known: Known, query: dict[str, str], field: str
) -> None:
    """A grouping the report has not, a field twice, or a date that is none or after the end: 400, in Chinese and
    English, naming the field; for ``by``, the groups it may take."""
    async with client.get("/v1/reports", params=query, headers=known.scene.admin()) as response:
        problem = await assert_problem(response, 400, field)
    assert problem["field"] == field
    if field == "by":
        assert problem["allowed"] == list(GROUPS)


async def test_a_parameter_given_twice_is_400(client: Client, known: Known) -> None:
    """``by`` twice in the query is refused, not half read."""
    async with client.get("/v1/reports?by=day&by=type", headers=known.scene.admin()) as response:
        assert (await assert_problem(response, 400, "by"))["field"] == "by"


async def test_only_the_administrator_reads_a_report(client: Client, known: Known) -> None:
    """No key is 401; a counter's or an app's key is 403."""
    async with client.get("/v1/reports") as response:
        await assert_problem(response, 401)
    for who in ("cq-notary-zhixin-01", "@app:tianfu-tongban"):
        async with client.get("/v1/reports", headers=known.scene.auth(who)) as response:
            await assert_problem(response, 403)


async def test_a_trail_out_of_reach_is_503(aiohttp_client: ClientFactory, scene: Scene) -> None:
    """A trail whose PostgreSQL does not answer: 503 with Retry-After, in both languages, never an empty report."""
    away = Settings(audit_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x", separate_audit_writer=True)
    client = await aiohttp_client(scene.app(away, store=MemoryStore()))
    for accept in ("application/json", "text/csv"):
        headers = {**scene.admin(), "Accept": accept}
        async with client.get("/v1/reports", params={"by": "day"}, headers=headers) as response:
            await assert_problem(response, 503, "审计记录", "audit trail")
            assert response.headers["Retry-After"] == "2"
