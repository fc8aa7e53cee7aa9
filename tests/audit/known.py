"""A known set of scans, posted through the real app on days the test chooses and written to an audit trail: the
answers every report and usage log of tests/audit/ is checked against. Each step says what its answer must be,
and what the trail must file it under (the counter's province, city and institution written out here, not
looked up), so a report is checked against this table, not against the code that makes it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.forge import split
from tests.scenes import Scene
from verifier.adapters.audit.trail import CHINA
from verifier.adapters.memory_store import MemoryStore
from verifier.issuer.mint import citizen_id
from verifier.service.settings import Settings

TODAY = datetime.now(CHINA).date()
JUNK = "junk"  # a step showing this is not a token at all

# The licences shown: (app, type, province, holder, number). The social security card is shown through two
# apps: one holder, one number, one sub — each app sees only its own uses of it.
LICENCES: dict[str, tuple[str, str, str, str, str | None]] = {
    "dl-A": ("jiaoguan-12123", "driving-licence", "SC", "张三", citizen_id(880_101)),
    "dl-G": ("jiaoguan-12123", "driving-licence", "CQ", "陈九", citizen_id(880_102, "CQ")),
    "dl-H": ("jiaoguan-12123", "driving-licence", "SC", "吴十", citizen_id(880_103)),
    "lawyer-B": ("yukuaiban", "lawyer-licence", "CQ", "李四", None),
    "library-C": ("tianfu-tongban", "library-card", "SC", "王五", citizen_id(880_104)),
    "library-D": ("tianfu-tongban", "library-card", "SC", "赵六", citizen_id(880_105)),
    "social-E": ("sichuan-renshe", "social-security", "SC", "孙七", citizen_id(880_106)),
    "social-E2": ("tianfu-tongban", "social-security", "SC", "孙七", citizen_id(880_106)),
    "employment-F": ("chongqing-renshe", "employment-cert", "CQ", "周八", citizen_id(880_107, "CQ")),
}

# Where each counter stands: its province, GB/T 2260 city and institution, as the trail must file its answers.
PLACES = {
    "sc-notary-shudu-01": ("SC", "510100", "sc-notary-shudu"),
    "sc-notary-fucheng-01": ("SC", "510700", "sc-notary-fucheng"),
    "sc-justice-dept-01": ("SC", "510100", "sc-justice-dept"),
    "sc-employment-01": ("SC", "510100", "sc-employment"),
    "sc-social-insurance-01": ("SC", "510100", "sc-social-insurance"),
    "cq-notary-zhixin-01": ("CQ", "500000", "cq-notary-zhixin"),
    "cq-notary-zhixin-02": ("CQ", "500000", "cq-notary-zhixin"),
    "cq-yuzhong-library-01": ("CQ", "500000", "cq-yuzhong-library"),
    "cq-library-01": ("CQ", "500000", "cq-library"),
    "cq-employment-01": ("CQ", "500000", "cq-employment"),
    "cq-social-insurance-01": ("CQ", "500000", "cq-social-insurance"),
}


@dataclass(frozen=True)
class Step:
    """One scan: ``ago`` days before today at ``clock`` (China time), its licence, counter and business, and the
    answer it must get (``reasons`` empty for an acceptance; ``cached`` for a re-scan of the same business)."""

    ago: int
    clock: str
    licence: str
    counter: str
    scenario: str
    decision: str
    reasons: tuple[str, ...] = ()
    item: int | None = None
    cached: bool = False

    @property
    def at(self) -> datetime:
        """When it is scanned."""
        hour, minute = map(int, self.clock.split(":"))
        day = TODAY - timedelta(days=self.ago)
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHINA)

    def fields(self) -> dict[str, Any]:
        """What the trail must file it under: the report's groups (``reason``: its codes)."""
        province, city, institution = PLACES[self.counter]
        licence = LICENCES.get(self.licence)
        return {
            "day": self.at.date().isoformat(),
            "month": self.at.strftime("%Y-%m"),
            "province": province,
            "city": city,
            "institution": institution,
            "counter": self.counter,
            "type": licence[1] if licence else "-",
            "issuing_province": licence[2] if licence else "-",
            "scenario": self.scenario,
            "item": self.item,
            "decision": self.decision,
            "reason": self.reasons,
        }


NOTARY = "notary-driving-licence"
STEPS = (
    Step(10, "09:00", "dl-H", "sc-notary-shudu-01", NOTARY, "accepted"),  # before the period most tests ask
    Step(3, "10:00", "dl-A", "cq-notary-zhixin-01", NOTARY, "accepted", item=22),
    Step(3, "10:05", "dl-A", "cq-notary-zhixin-01", NOTARY, "accepted", item=22, cached=True),
    Step(3, "11:00", "lawyer-B", "sc-justice-dept-01", "justice-admin", "accepted"),
    Step(3, "15:00", "library-C", "cq-yuzhong-library-01", "library-borrowing", "rejected", ("OUT_OF_PILOT_SCOPE",)),
    Step(2, "09:30", "dl-A", "cq-notary-zhixin-02", NOTARY, "rejected", ("REPLAYED",), item=22),
    Step(2, "10:00", "library-D", "cq-library-01", "library-borrowing", "accepted"),
    Step(2, "14:00", "social-E", "cq-employment-01", "employment-subsidy", "rejected", ("SCENARIO_NOT_FOR_LICENCE",)),
    Step(2, "16:00", "social-E", "sc-social-insurance-01", "pension-insurance", "accepted"),
    # 01:30 in China is the evening before in UTC: the day is China's
    Step(1, "01:30", "employment-F", "sc-employment-01", "employment-subsidy", "accepted", item=44),
    Step(1, "10:00", JUNK, "sc-employment-01", "employment-subsidy", "rejected", ("TOKEN_MALFORMED",)),
    Step(1, "11:00", "dl-G", "sc-notary-fucheng-01", NOTARY, "accepted"),
    Step(1, "12:00", "social-E2", "cq-social-insurance-01", "pension-insurance", "accepted"),
)
FIRST, LAST = TODAY - timedelta(days=3), TODAY - timedelta(days=1)  # the period most tests ask for
OPERATOR, SERIAL = "clerk-7731", "YW-5520"  # the clerk's fields every scan carries: never in a usage log


def expected(by: Sequence[str], first: date = FIRST, last: date = LAST) -> dict[tuple[Any, ...], dict[str, int]]:
    """The report the steps make, counted here: group values -> answers, first scans, accepted, rejected."""
    tally: dict[tuple[Any, ...], Tally[str]] = {}
    for step in STEPS:
        if not first <= step.at.date() <= last:
            continue
        values = step.fields()
        for reason in values["reason"] if "reason" in by and values["reason"] else [None]:
            group = tuple(reason if name == "reason" else values[name] for name in by)
            counts = tally.setdefault(group, Tally())
            counts.update(answers=1, first_scans=0 if step.cached else 1)
            counts.update(accepted=step.decision == "accepted", rejected=step.decision == "rejected")
    return {group: {k: counts[k] for k in ("answers", "first_scans", "accepted", "rejected")}
            for group, counts in tally.items()}  # fmt: skip


@dataclass
class Known:
    """The trail at ``url`` holding the steps' answers; ``subs`` the sub of each licence shown."""

    scene: Scene
    url: str
    subs: dict[str, str] = field(default_factory=dict)

    def settings(self) -> Settings:
        """A service reading this trail (and writing none of its own)."""
        return Settings(audit_url=self.url, separate_audit_writer=True)


async def _scan(client: TestClient[Any, Any], known: Known, step: Step, token: str) -> None:
    body: dict[str, Any] = {"token": token, "scenario": step.scenario, "operator": OPERATOR, "serial_no": SERIAL}
    if step.item is not None:
        body["item"] = step.item
    async with client.post("/v1/scans", json=body, headers=known.scene.auth(step.counter)) as response:
        answer = await response.json()
    assert response.status == 200, answer
    got = (answer["decision"], tuple(r["code"] for r in answer["reasons"]), answer["cached"])
    assert got == (step.decision, step.reasons, step.cached), step


async def write_known(known: Known) -> None:
    """Post every step through the real app, its own writer running, on a store whose clock says each step's
    time; return once the writer has written every answer (the store's backlog is empty)."""
    now = [time.time()]
    store = MemoryStore(clock=lambda: now[0])  # the answers' times; tokens are checked on the real clock
    tokens: dict[str, str] = {JUNK: "not-a-token"}
    for name, (app, kind, province, holder, number) in LICENCES.items():
        options: dict[str, Any] = {"holder": holder} | ({"licence_no": number} if number else {})
        tokens[name] = known.scene.apps[app].present(kind, province, **options).token
        known.subs[name] = split(tokens[name])[1]["sub"]
    async with TestClient(TestServer(known.scene.app(Settings(audit_url=known.url), store=store))) as client:
        for step in STEPS:
            now[0] = step.at.timestamp()
            await _scan(client, known, step, tokens[step.licence])
        for _ in range(600):  # the writer rests half a second when it finds nothing: 30 s at most
            if not await store.backlog():
                break
            await asyncio.sleep(0.05)
        assert await store.backlog() == 0, "the writer did not write every answer"
