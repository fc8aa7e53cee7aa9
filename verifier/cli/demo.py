"""``verifier demo``: the whole story on the embedded store, over real HTTP on a loopback port.

Both provinces' apps present licences; counters in both provinces scan them: accepted both ways,
out of scope, wrong channel, wrong scenario, replayed at a second counter, re-scanned (cached),
revoked, and a row whose rules the source lost. Every answer is then written to an audit trail on a temporary
SQLite file, and the trail's report by licence type ends the story.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from verifier.adapters.api_keys import ADMIN, ApiKeys
from verifier.adapters.audit.trail import CHINA, AuditTrail, engine_url
from verifier.adapters.audit.writer import TrailWriter
from verifier.adapters.catalogue_files import load_catalogue
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.trust_source import JwksTrustSource
from verifier.cli import report_table, texttable
from verifier.core.catalogue import Catalogue
from verifier.core.report import ReportRow
from verifier.core.token import TYP, encode
from verifier.issuer.apps import apps
from verifier.issuer.keys import KeyRing, KeyStore
from verifier.service.settings import Settings
from verifier.web.app import create_app
from verifier.web.server import ProblemRunner


@dataclass(frozen=True)
class Step:
    """One scan of the story."""

    story: str
    token: Callable[[], str]
    shown: str  # who showed what, for the table
    counter: str
    scenario: str
    before: Callable[[], Any] | None = None  # an admin action first (a revocation)


def _foreign_channel_token(cat: Catalogue, ring: KeyRing, now: float) -> str:
    """A lawyer licence signed by its real unit but shown through 交管12123, an app the list does not name for it."""
    key = ring.signing_key("sc-justice", now)
    # lt is the type's seq; vf and vu are 2020-01-01 and 2030-12-31 as days since 1970-01-01.
    claims = {
        "iss": "sc-justice", "prv": "SC", "lt": cat.licences["lawyer-licence"].seq, "ch": "jiaoguan-12123",
        "no": "15101202010012345", "hn": "王*", "sub": "demoabcd", "vf": 18262, "vu": 22279, "iat": int(now),
        "exp": int(now) + 300, "jti": "demoforeign",
    }  # fmt: skip
    return encode({"alg": key.alg, "kid": key.kid, "typ": TYP}, claims, key.sign)


def _steps(cat: Catalogue, ring: KeyRing, now: float, revoke: Callable[[dict[str, str]], Any]) -> list[Step]:
    app = apps(cat, ring)
    tokens: dict[str, str] = {}

    def present(name: str, channel: str, licence_type: str, province: str, **options: Any) -> Callable[[], str]:
        def make() -> str:
            if name not in tokens:
                tokens[name] = app[channel].present(licence_type, province, now=now, **options).token
            return tokens[name]

        return make

    dl = present("dl", "jiaoguan-12123", "driving-licence", "SC", holder="张三", licence_no="510104199001011230")
    lawyer = present("lawyer", "yukuaiban", "lawyer-licence", "CQ", holder="李四")
    card = present("card", "tianfu-tongban", "library-card", "SC", holder="王五")
    emp = present("emp", "chongqing-renshe", "employment-cert", "CQ", holder="赵六", licence_no="500103198507210023")
    return [
        Step("川→渝 互认 / SC licence at a CQ notary", dl, "交管12123 · 驾驶证 (SC)", "cq-notary-zhixin-01", "notary-driving-licence"),
        Step("渝→川 互认 / CQ licence at a SC justice bureau", lawyer, "渝快办 · 律师执业证 (CQ)", "sc-justice-dept-01", "justice-admin"),
        Step("同窗口重扫 / re-scan at the same counter", dl, "交管12123 · 驾驶证 (SC)", "cq-notary-zhixin-01", "notary-driving-licence"),
        Step("换窗口重用 / shown again at a second counter", dl, "交管12123 · 驾驶证 (SC)", "cq-notary-zhixin-02", "notary-driving-licence"),
        Step("试点内图书馆 / library in scope", card, "天府通办 · 借书证 (SC)", "cq-library-01", "library-borrowing"),
        Step("试点外图书馆 / library out of scope", present("card2", "tianfu-tongban", "library-card", "SC"), "天府通办 · 借书证 (SC)", "cq-yuzhong-library-01", "library-borrowing"),
        Step("非指定渠道 / app not designated", lambda: _foreign_channel_token(cat, ring, now), "交管12123 · 律师执业证 (SC)", "cq-justice-bureau-01", "justice-admin"),
        Step("业务不符 / wrong business", present("ss", "sichuan-renshe", "social-security", "SC"), "四川人社 · 社保卡 (SC)", "cq-employment-01", "employment-subsidy"),
        Step("渝→川 就业创业证 / CQ certificate in SC", emp, "重庆人社 · 就业创业证 (CQ)", "sc-employment-01", "employment-subsidy"),
        Step("注销后重扫 / re-scan after revocation", emp, "重庆人社 · 就业创业证 (CQ)", "sc-employment-01", "employment-subsidy",
             before=lambda: revoke({"type": "employment-cert", "province": "CQ", "licence_no": "500103198507210023", "reason": "demo"})),
        Step("规则缺失 / rules lost in the source", present("tq", "tianfu-tongban", "transport-qual", "SC"), "天府通办 · 从业资格证 (SC)", "sc-transport-enforcement-01", "transport-service-enforcement"),
    ]  # fmt: skip


async def _run(as_json: bool) -> int:
    cat = load_catalogue()
    now = time.time()
    ring = KeyStore(cat.units.values()).keyring(now)
    with tempfile.TemporaryDirectory() as tmp:
        api = ApiKeys(Path(tmp) / "api-keys.json")
        admin = api.issue(ADMIN)
        store = MemoryStore()
        # The audit trail on a temporary SQLite file, written below once the story is done (so never the
        # state folder's trail, which a real service keeps).
        trail_url = f"sqlite:///{Path(tmp) / 'audit.sqlite3'}"
        app = create_app(
            Settings(audit_url=trail_url, separate_audit_writer=True),
            store=store,
            trust=JwksTrustSource.static(ring.trust_list()),
            catalogue=cat,
            api_keys=api,
        )
        runner = ProblemRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        results: list[dict[str, Any]] = []
        pending: list[Any] = []
        try:
            async with aiohttp.ClientSession(base) as http:

                def revoke(body: dict[str, str]) -> Any:
                    return http.post("/v1/revocations", json=body, headers={"Authorization": f"Bearer {admin}"})

                keys: dict[str, str] = {}
                serials: dict[tuple[str, str, str], str] = {}  # one business, one serial: a re-scan keeps it
                for step in _steps(cat, ring, now, revoke):
                    if step.before is not None:
                        async with step.before() as response:
                            pending.append(await response.json())
                    if step.counter not in keys:
                        keys[step.counter] = api.issue(step.counter)
                    token = step.token()
                    business = (token, step.counter, step.scenario)
                    serial = serials.setdefault(business, f"DEMO-{len(serials) + 1:04d}")
                    body = {"token": token, "scenario": step.scenario, "operator": "demo-clerk", "serial_no": serial}
                    async with http.post(
                        "/v1/scans", json=body, headers={"Authorization": f"Bearer {keys[step.counter]}"}
                    ) as response:
                        results.append({"step": step, "status": response.status, "body": await response.json()})
                async with http.get("/v1/stats", headers={"Authorization": f"Bearer {admin}"}) as response:
                    stats = await response.json()
        finally:
            await runner.cleanup()
        report = await _report(store, engine_url(trail_url, Path(tmp)), cat)
    if as_json:
        _print_json(results, stats, *report)
    else:
        _print(results, stats, cat)
        print("\n核验留痕报表 report from the audit trail (the table `verifier report --by type` prints):")
        print(report_table.render(*report, REPORT_BY, cat))
    return 0 if all(r["status"] == 200 for r in results) else 1


REPORT_BY = ("type",)  # each licence type with its answers, accepted and rejected: the story at a glance


async def _report(store: MemoryStore, url: str, cat: Catalogue) -> tuple[list[ReportRow], ReportRow]:
    """Every answer of the story written to the trail at ``url`` (as a service's writer does), and the trail's
    report of the last two days (the story may cross midnight) by licence type, with its total."""
    trail = AuditTrail(url)
    try:
        writer = TrailWriter(store, trail, lambda: cat)
        while await writer.step():
            pass
        today = datetime.now(CHINA).date()
        return await trail.report(today - timedelta(days=1), today, REPORT_BY)
    finally:
        await trail.close()


def _print_json(results: list[dict[str, Any]], stats: dict[str, Any], rows: list[ReportRow], total: ReportRow) -> None:
    out = [
        {"story": r["step"].story, "counter": r["step"].counter, "scenario": r["step"].scenario, **r["body"]}
        for r in results
    ]
    report = {"by": list(REPORT_BY), "rows": [row.as_dict() for row in rows], "total": total.as_dict()}
    print(json.dumps({"scans": out, "stats": stats["total"], "report": report}, ensure_ascii=False, indent=2))


def _print(results: list[dict[str, Any]], stats: dict[str, Any], cat: Catalogue) -> None:
    print("川渝电子证照亮证互认 — demo on the embedded in-process store (no Redis; one instance only)\n")
    rows = []
    for n, r in enumerate(results, 1):
        body, step = r["body"], r["step"]
        counter = cat.counters[step.counter]
        verdict = {"accepted": "通过 accepted", "rejected": "不通过 rejected"}.get(
            body.get("decision"), f"HTTP {r['status']}"
        ) + ("\n缓存 cached" if body.get("cached") else "")
        reasons = ", ".join(x["code"] for x in body.get("reasons", [])) or "—"
        rows.append(
            [
                str(n),
                step.story,
                step.shown,
                f"{counter.name_zh} ({counter.province})",
                verdict,
                reasons,
            ]
        )
    print(texttable.render(["#", "故事 story", "亮证 shown", "窗口 counter", "结果 decision", "原因 reasons"], rows))
    print("\n原因说明 reasons:")
    seen: set[str] = set()
    for r in results:
        for reason in r["body"].get("reasons", []):
            if reason["code"] not in seen:
                seen.add(reason["code"])
                print(texttable.paragraph(f"  {reason['code']}: {reason['message_zh']} / {reason['message_en']}"))
    total = stats["total"]
    print(
        f"\n核验统计 stats: {total['scans']} scans, {total['accepted']} accepted, {total['rejected']} rejected, {stats['rescans']} re-scans."
    )


def run_demo(*, as_json: bool = False) -> int:
    """Run the story and print it; exit 0 when every scan got a decision."""
    return asyncio.run(_run(as_json))
