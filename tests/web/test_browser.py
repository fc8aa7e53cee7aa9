"""The console and the dashboard in a real headless Chromium, against the real app on a loopback port.

Screenshots go to ``test-artifacts/`` (git-ignored); ``docs/screenshots/`` holds the showcase copies.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import segno
from aiohttp import web

from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.core.catalogue import Catalogue
from verifier.core.reasons import MESSAGES
from verifier.issuer.mint import citizen_id
from verifier.web.edge import json_response, require_admin

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")

from tests.browser_kit import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM,
    FLAGS,
    camera_feed,
    key_of,
    scan,
    served,
    shot,
    sign_in_console,
)

NOTARY_1, NOTARY_2 = "cq-notary-zhixin-01", "cq-notary-zhixin-02"
NOTARY = "notary-driving-licence"


# Not conftest's ``scene``: this one is module-scoped, as the module-scoped server built on it must be,
# so its key file lives in a folder of the module's own rather than in one test's tmp_path.
@pytest.fixture(scope="module")
def scene(catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Real issuer keys and a key file of this module's own."""
    return Scene.build(catalogue, tmp_path_factory.mktemp("browser-keys"))


@pytest.fixture(scope="module")
def server(scene: Scene) -> Iterator[str]:
    """The app built by its factory, served on a free loopback port."""
    with served(scene.app(store=MemoryStore())) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright; skipped only if it cannot start here."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium chromium-driver)")
    with playwright_sync.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        except playwright_sync.Error as exc:
            pytest.skip(f"Chromium cannot be launched here: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) at the counter screen size, 1366×768."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server, locale="zh-CN")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_accepted_scan_fills_the_screen(page: Page, scene: Scene) -> None:
    """A Sichuan driving licence typed in at a Chongqing notary counter shows a large green 通过 and the licence."""
    sign_in_console(page, scene, NOTARY_1)
    assert page.evaluate("document.activeElement.id") == "token"
    assert "重庆市至信公证处01号窗口" in page.inner_text("#who")
    page.fill("#serial", "YW-2024-0001")
    page.fill("#operator", "clerk-07")
    number = citizen_id(123456)
    result = scan(page, scene.driving_licence("SC", holder="张三丰", licence_no=number), key_by_key=True)
    assert "accepted" in (result.get_attribute("class") or "")
    text = result.inner_text()
    assert "通过" in text
    assert "不通过" not in text
    assert "机动车驾驶证" in text
    assert "四川" in text
    assert f"510{'*' * 13}{number[-2:]}" in text
    assert "YW-2024-0001" in text
    assert "clerk-07" in text
    assert page.evaluate("document.activeElement.id") == "token"
    box = result.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= 768  # the whole result on a 1366×768 screen, no scrolling
    shot(page, "console-accepted")


def test_rejected_scan_lists_every_reason_in_chinese(page: Page, scene: Scene) -> None:
    """An expired driving licence shown for library borrowing is rejected with each reason in Chinese."""
    sign_in_console(page, scene, "cq-library-01")
    page.select_option("#scenario", "library-borrowing")
    token = scene.driving_licence("SC", holder="李四", valid_until=dt.date(2020, 1, 1), valid_from=dt.date(2014, 1, 1))
    result = scan(page, token)
    assert "rejected" in (result.get_attribute("class") or "")
    codes = result.locator(".reasons code").all_inner_texts()
    assert "SCENARIO_NOT_FOR_LICENCE" in codes
    assert "LICENCE_EXPIRED" in codes
    messages = result.locator(".reasons .message").all_inner_texts()
    assert messages == [MESSAGES[code][0] for code in codes]
    shot(page, "console-rejected")
    page.click("#lang")
    assert result.locator(".reasons .message").all_inner_texts() == [MESSAGES[code][1] for code in codes]
    assert "Rejected" in result.inner_text()
    shot(page, "console-rejected-en")


def test_rescan_is_cached_and_a_second_counter_sees_replayed(
    page: Page, browser: Browser, server: str, scene: Scene
) -> None:
    """Re-scanning says 重复扫码（缓存结果）; the same code at a second counter is said to be REPLAYED."""
    token = scene.driving_licence("SC")
    sign_in_console(page, scene, NOTARY_1)
    scan(page, token)
    result = scan(page, token)
    assert "重复扫码（缓存结果）" in result.inner_text()
    other = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=server).new_page()
    sign_in_console(other, scene, NOTARY_2)
    replayed = scan(other, token)
    assert "rejected" in (replayed.get_attribute("class") or "")
    plain = replayed.locator(".plain").inner_text()
    assert "其他窗口使用过" in plain
    assert "REPLAYED" in plain
    box = replayed.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= 768
    shot(other, "console-replayed")
    other.context.close()


def test_revoked_licence_is_said_plainly(page: Page, scene: Scene) -> None:
    """After the issuing unit revokes a licence, its next scan is rejected and says REVOKED plainly."""
    sign_in_console(page, scene, NOTARY_1)
    assert "accepted" in (
        scan(page, scene.driving_licence("SC", licence_no=citizen_id(999001))).get_attribute("class") or ""
    )
    answer = page.request.post(
        "/v1/revocations",
        headers=scene.admin(),
        data={"type": "driving-licence", "province": "SC", "licence_no": citizen_id(999001), "reason": "吊销"},
    )
    assert answer.status == 200
    result = scan(page, scene.driving_licence("SC", licence_no=citizen_id(999001)))
    assert "rejected" in (result.get_attribute("class") or "")
    assert "证照已被签发单位注销或吊销" in result.locator(".plain-revoked").inner_text()
    shot(page, "console-revoked")


def test_dropped_image_is_decoded_in_the_browser(page: Page, scene: Scene, tmp_path: Path) -> None:
    """A QR image chosen from disk is decoded on the page and verified like a typed code."""
    image = tmp_path / "code.png"
    segno.make(scene.driving_licence("CQ"), error="m").save(str(image), scale=4)
    sign_in_console(page, scene, NOTARY_1)
    page.set_input_files("#image", str(image))
    page.locator("#result.accepted, #result.rejected, #result.notice").wait_for()
    assert "accepted" in (page.get_attribute("#result", "class") or "")


def test_camera_reads_the_code(browser: Browser, scene: Scene, server: str, tmp_path: Path) -> None:
    """The camera button reads a QR code from the camera and verifies it (fake camera showing the code)."""
    feed = camera_feed(scene.driving_licence("SC"), tmp_path / "camera.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    # A browser of its own: the fake camera's file is a launch flag.
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=[*FLAGS, *camera, f"--use-file-for-fake-video-capture={feed}"]
    )
    try:
        context = chromium.new_context(viewport={"width": 1366, "height": 768}, base_url=server)
        context.grant_permissions(["camera"])
        tab = context.new_page()
        sign_in_console(tab, scene, NOTARY_1)
        tab.click("#camera")
        tab.locator("#result.accepted, #result.rejected, #result.notice").wait_for(timeout=15_000)
        assert "accepted" in (tab.get_attribute("#result", "class") or "")
        assert tab.locator("#camera-box").is_hidden()  # the camera closes once it has read a code
    finally:
        chromium.close()


def test_unavailable_service_is_never_green(page: Page, scene: Scene) -> None:
    """A 503 from the service shows 暂时无法核验，请稍后重试 and replaces an earlier green result."""
    sign_in_console(page, scene, NOTARY_1)
    scan(page, scene.driving_licence("SC"))
    page.route(
        "**/v1/scans",
        lambda route: route.fulfill(
            status=503,
            content_type="application/problem+json",
            body='{"status": 503, "title": "unavailable", "detail": "state store unavailable"}',
        ),
    )
    result = scan(page, scene.driving_licence("SC"))
    assert result.get_attribute("class") == "result unavailable"
    assert "暂时无法核验，请稍后重试" in result.inner_text()
    assert page.locator("#result.accepted").count() == 0


def test_console_fits_an_upright_tablet(browser: Browser, server: str, scene: Scene) -> None:
    """On an 800×1280 tablet the console needs no sideways scrolling and shows the reasons."""
    context = browser.new_context(viewport={"width": 800, "height": 1280}, base_url=server, has_touch=True)
    tab = context.new_page()
    sign_in_console(tab, scene, "cq-library-01")
    result = scan(tab, scene.driving_licence("SC"))
    assert "rejected" in (result.get_attribute("class") or "")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 800
    assert result.locator(".reasons li").first.is_visible()
    shot(tab, "console-tablet")
    context.close()


def test_scanner_keys_reach_the_code_field_from_a_button(page: Page, scene: Scene) -> None:
    """With focus left on a button, a scanner's keystrokes still land in the code field and Enter verifies."""
    sign_in_console(page, scene, NOTARY_1)
    page.focus("#lang")
    page.keyboard.type(scene.driving_licence("SC"))
    page.keyboard.press("Enter")
    page.locator("#result.accepted, #result.rejected").wait_for()
    assert "accepted" in (page.get_attribute("#result", "class") or "")


def test_business_is_chosen_with_the_keyboard(page: Page, scene: Scene) -> None:
    """Arrow keys change the business without losing focus; Enter returns to the code field."""
    sign_in_console(page, scene, "sc-legal-service-chengdu-01")
    for expected in ("operator", "serial", "item", "scenario"):  # the fields before the code field, in reading order
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("document.activeElement.id") == expected
    page.keyboard.press("ArrowDown")
    assert page.input_value("#scenario") == "justice-admin"
    assert page.evaluate("document.activeElement.id") == "scenario"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "token"


def test_item_picker_offers_the_items_of_the_business(page: Page, scene: Scene) -> None:
    """A business with 川渝通办 items shows their picker; the chosen item goes with the scan, shows in the result
    and is kept for that business; a business without items hides the picker and sends none."""
    sign_in_console(page, scene, "sc-legal-service-chengdu-01")
    assert page.input_value("#scenario") == NOTARY
    assert page.locator("#item").is_visible()
    assert page.locator("#item option").evaluate_all("options => options.map(o => o.value)") == ["", "22"]
    assert page.input_value("#item") == ""  # optional: none until the clerk picks one
    assert "机动车驾驶证公证" in page.inner_text("#item")
    page.select_option("#item", "22")
    with page.expect_request("**/v1/scans") as sent:
        result = scan(page, scene.driving_licence("CQ"))
    assert (sent.value.post_data_json or {})["item"] == 22
    assert "通办事项22" in result.locator(".meta").inner_text()
    shot(page, "console-item")
    page.select_option("#scenario", "justice-admin")
    assert page.locator("#item").is_hidden()
    assert page.locator("label[for=item]").is_hidden()
    with page.expect_request("**/v1/scans") as sent:
        scan(page, scene.apps["yukuaiban"].present("lawyer-licence", "CQ").token)
    assert "item" not in (sent.value.post_data_json or {})
    page.select_option("#scenario", NOTARY)
    assert page.input_value("#item") == "22"  # kept for the business, for the session
    page.reload()
    page.wait_for_selector("#desk:not([hidden])")
    assert (page.input_value("#scenario"), page.input_value("#item")) == (NOTARY, "22")


def test_wrong_key_is_refused_on_the_sign_in_form(page: Page) -> None:
    """A wrong counter key keeps the clerk on the sign-in form with a message."""
    page.goto("/console")
    page.fill("#key", "cq-notary-zhixin-01.not-the-secret")
    page.press("#key", "Enter")
    page.wait_for_selector("#signin-error:has-text('密钥无效')")
    assert page.locator("#desk").is_hidden()


# A morning at the counters of both provinces: recognised both ways, and the usual mistakes.
TRAFFIC = [
    ("jiaoguan-12123", "driving-licence", "SC", NOTARY_1, NOTARY),
    ("jiaoguan-12123", "driving-licence", "CQ", "sc-notary-shudu-01", NOTARY),
    ("jiaoguan-12123", "driving-licence", "SC", "sc-notary-shudu-02", NOTARY),
    ("yukuaiban", "lawyer-licence", "CQ", "sc-justice-dept-01", "justice-admin"),
    ("tianfu-tongban", "library-card", "SC", "cq-library-01", "library-borrowing"),
    ("tianfu-tongban", "library-card", "SC", "cq-yuzhong-library-01", "library-borrowing"),
    ("sichuan-renshe", "social-security", "SC", "cq-employment-01", "employment-subsidy"),
    ("chongqing-renshe", "employment-cert", "CQ", "sc-employment-01", "employment-subsidy"),
    ("jiaoguan-12123", "driving-licence", "SC", "cq-library-01", "library-borrowing"),
]


def test_dashboard_draws_live_charts(page: Page, scene: Scene, server: str) -> None:
    """The dashboard signs in with the admin key and draws scans per minute, the matrix and problems."""
    for channel, licence_type, province, counter, scenario in TRAFFIC:
        token = scene.apps[channel].present(licence_type, province).token
        answer = page.request.post(
            "/v1/scans", headers=scene.auth(counter), data={"token": token, "scenario": scenario}
        )
        assert answer.ok
    page.goto("/dashboard")
    page.fill("#key", key_of(scene, "@admin"))
    page.press("#key", "Enter")
    page.wait_for_selector("#board:not([hidden])")
    page.wait_for_selector("#minutes svg rect.bar-accepted")
    assert page.locator("#minutes svg rect.bar-rejected").count() >= 1
    assert page.locator("#problems li").count() >= 2
    assert "四川签发" in page.inner_text("#matrix")
    assert "重庆窗口" in page.inner_text("#matrix")
    assert page.locator("#types tr").count() >= 2
    before = page.inner_text("#kpis")
    page.request.post(
        "/v1/scans", headers=scene.auth(NOTARY_1), data={"token": scene.driving_licence("SC"), "scenario": NOTARY}
    )
    playwright_sync.expect(page.locator("#kpis")).not_to_have_text(before, timeout=10_000)  # the next poll
    shot(page, "dashboard", full_page=True)


# ---- the trend: 90 days of GET /v1/reports ----

PERIOD = [dt.date(2026, 3, 3) + dt.timedelta(days=i) for i in range(90)]  # a Tuesday to a Sunday: 13 weeks
BAD_WEEK = range(69, 76)  # 2026-05-11 to 05-17: library cards revoked in numbers
CHINA = dt.timezone(dt.timedelta(hours=8))

Answer = tuple[dt.date, str, str | None, str | None, int, int]  # day, type, city, reason, accepted, rejected


def _answers() -> list[Answer]:
    """90 days of answers: driving licences growing in Chengdu, library cards in Chongqing (revoked in numbers one
    week), lawyers' licences in Mianyang, and now and then a forged code at a counter of no known city."""
    answers: list[Answer] = []
    for i, day in enumerate(PERIOD):
        answers.append((day, "driving-licence", "510100", "OUT_OF_PILOT_SCOPE", 20 + i // 3 - i % 5, i % 5))
        if i in BAD_WEEK:
            answers.append((day, "library-card", "500000", "REVOKED", 2, 6))
        else:
            answers.append((day, "library-card", "500000", "CHANNEL_NOT_ALLOWED", 7, 1))
        answers.append((day, "lawyer-licence", "510700", None, 3, 0))
        if i % 10 == 0:
            answers.append((day, "-", None, "SIGNATURE_INVALID", 0, 1))
    return answers


ANSWERS = _answers()


def _counts(accepted: int, rejected: int) -> dict[str, Any]:
    answers = accepted + rejected
    return {
        "answers": answers,
        "accepted": accepted,
        "rejected": rejected,
        "rescans": 0,
        "acceptance_rate": round(accepted / answers, 4) if answers else None,
    }


def _report(by: str) -> dict[str, Any]:
    """The document GET /v1/reports answers for ``by`` (day and one more field) over ``PERIOD``."""
    field = by.removeprefix("day,")
    accepted: Tally[tuple[str, Any]] = Tally()
    rejected: Tally[tuple[str, Any]] = Tally()
    for day, licence_type, city, reason, yes, no in ANSWERS:
        value = {"type": licence_type, "city": city, "reason": reason}[field]
        if field == "reason" and not no:
            continue
        accepted[day.isoformat(), value] += 0 if field == "reason" else yes  # reason rows count rejections only
        rejected[day.isoformat(), value] += no
    rows = [
        {"day": day, field: value, **_counts(accepted[day, value], rejected[day, value])} for day, value in accepted
    ]
    total = _counts(sum(a[4] for a in ANSWERS), sum(a[5] for a in ANSWERS))
    return {
        "from": PERIOD[0].isoformat(),
        "to": PERIOD[-1].isoformat(),
        "by": ["day", field],
        "rows": rows,
        "total": total,
    }


@pytest.fixture(scope="module")
def report_server(scene: Scene) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The app, with GET /v1/reports answering fixed reports to the administrator; yields its URL and the queries
    the page asked. (The audit trail that makes the real reports is another module's; the page is tested here.)"""
    asked: list[dict[str, str]] = []

    @web.middleware
    async def fixed_reports(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != "/v1/reports":
            return await handler(request)
        require_admin(request)
        asked.append(dict(request.query))
        return json_response(_report(request.query["by"]))

    app = scene.app(store=MemoryStore())
    app.middlewares.append(fixed_reports)
    with served(app) as url:
        yield url, asked


def _open_dashboard(tab: Page, scene: Scene) -> None:
    tab.goto("/dashboard")
    tab.fill("#key", key_of(scene, "@admin"))
    tab.press("#key", "Enter")
    tab.wait_for_selector("#board:not([hidden])")


def test_dashboard_trend_draws_ninety_days_by_type_city_and_week(
    browser: Browser, report_server: tuple[str, list[dict[str, str]]], scene: Scene
) -> None:
    """The trend reads three reports of the last 90 China days with the admin key and draws daily scans and
    acceptance, each licence type and city with its daily bars (most rejections first), and each week's top
    rejection reasons, newest week first — in Chinese, and in English on the toggle."""
    url, asked = report_server
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=url, locale="zh-CN")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    before = dt.datetime.now(CHINA).date()
    _open_dashboard(tab, scene)
    tab.wait_for_selector("#trend-weeks tr:nth-child(2)")
    today = {before, dt.datetime.now(CHINA).date()}

    assert sorted(q["by"] for q in asked) == ["day,city", "day,reason", "day,type"]
    for query in asked:
        assert dt.date.fromisoformat(query["to"]) in today
        assert dt.date.fromisoformat(query["to"]) - dt.date.fromisoformat(query["from"]) == dt.timedelta(days=89)

    days = tab.locator("#trend-days svg g.bar")
    assert days.count() == 90
    assert (days.first.locator("title").text_content() or "").startswith("2026-03-03")
    assert tab.locator("#trend-days svg polyline.rate-line").count() == 1
    assert "2026-03-03 至 2026-05-31" in tab.inner_text("#trend-status")

    names = tab.locator("#trend-types td.name").all_inner_texts()
    assert names == ["中华人民共和国机动车驾驶证", "图书馆借书证", "未知证照", "中华人民共和国律师执业证"]
    assert tab.locator("#trend-types svg.spark").count() == 4
    assert tab.locator("#trend-types tr").nth(1).locator("td.num").inner_text() == str(
        sum(a[4] + a[5] for a in ANSWERS if a[1] == "driving-licence")
    )
    assert tab.locator("#trend-cities td.name").all_inner_texts() == ["成都市", "重庆市", "未知城市", "绵阳市"]

    weeks = tab.locator("#trend-weeks tr")
    assert weeks.count() == 1 + 13
    assert weeks.nth(1).locator(".week").inner_text() == "05-25 至 05-31"
    assert weeks.nth(13).locator(".week").inner_text() == "03-03 至 03-08"
    bad = weeks.nth(3)
    assert bad.locator(".week").inner_text() == "05-11 至 05-17"
    assert bad.locator(".chip").first.inner_text().startswith(f"{MESSAGES['REVOKED'][0]} ×42")
    assert weeks.nth(1).locator(".chip").first.inner_text().startswith(MESSAGES["OUT_OF_PILOT_SCOPE"][0])

    ARTIFACTS.mkdir(exist_ok=True)
    tab.locator("#trend").screenshot(path=str(ARTIFACTS / "dashboard-trend.png"))
    tab.click("#lang")
    assert tab.locator("#trend-cities td.name").all_inner_texts() == [
        "Chengdu",
        "Chongqing",
        "unknown city",
        "Mianyang",
    ]
    assert bad.locator(".chip").first.inner_text().startswith(f"{MESSAGES['REVOKED'][1]} ×42")
    assert "2026-03-03 to 2026-05-31" in tab.inner_text("#trend-status")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.mark.parametrize(
    ("status", "said"),
    [(503, "趋势暂不可用（HTTP 503）"), (404, "本服务未开启核验留痕")],
    ids=["trail-down", "no-trail"],
)
def test_dashboard_without_reports_says_so_and_keeps_the_live_figures(
    page: Page, scene: Scene, status: int, said: str
) -> None:
    """When /v1/reports cannot answer, the trend says why in words, and the live figures are drawn as ever."""
    page.route(
        "**/v1/reports?*",
        lambda route: route.fulfill(
            status=status,
            content_type="application/problem+json",
            body=f'{{"status": {status}, "title": "x", "detail": "audit trail"}}',
        ),
    )
    _open_dashboard(page, scene)
    playwright_sync.expect(page.locator("#trend-status")).to_contain_text(said)
    assert "stale" in (page.get_attribute("#trend-status", "class") or "")
    assert page.locator("#kpis .kpi").count() == 5
    assert page.locator("#trend-days svg").count() == 0
