"""The console and dashboard pages, their static files, and ``GET /v1/counters/me``, through the app
factory: content types, the self-only Content-Security-Policy, nothing inline, and authentication."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import Client, ClientFactory, assert_problem
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.core.reasons import MESSAGES
from verifier.web.pages import CSP, STATIC

PAGES = ("/console", "/dashboard")


@pytest.fixture
async def client(scene: Scene, aiohttp_client: ClientFactory) -> Client:
    """A client of the real app on the embedded store."""
    return await aiohttp_client(scene.app(store=MemoryStore()))


def _directives(policy: str) -> dict[str, str]:
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";")) if d}


def test_policy_allows_only_the_service_itself() -> None:
    """The CSP names no other origin and allows no inline script, inline style or eval."""
    directives = _directives(CSP)
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert not re.search(r"unsafe|https?:|\*", CSP)


@pytest.mark.parametrize("path", PAGES)
async def test_page_is_html_with_the_policy(client: Client, path: str) -> None:
    """Each page is UTF-8 HTML in Chinese first, with the CSP and no-sniff headers."""
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    assert '<html lang="zh-CN">' in html
    assert "川渝电子证照亮证互认" in html


@pytest.mark.parametrize("path", PAGES)
async def test_sign_in_says_log_in_not_check_in(client: Client, path: str) -> None:
    """Each page's sign-in button says 登录 (log in), with Sign in in English; 签到 (check in) appears nowhere,
    nor in the scripts that say the key stopped working."""
    html = await (await client.get(path)).text()
    assert '<button type="submit" data-en="Sign in">登录</button>' in html
    assert "签到" not in html
    assert not [p.name for p in STATIC.rglob("*.js") if "签到" in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", PAGES)
async def test_page_has_nothing_inline(client: Client, path: str) -> None:
    """No inline script, style or event handler: the only script without src is inert JSON data."""
    html = await (await client.get(path)).text()
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)
    assert "style=" not in html
    assert "<style" not in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


@pytest.mark.parametrize("path", PAGES)
async def test_every_form_field_has_a_label(client: Client, path: str) -> None:
    """Every input and select is named by a <label for=…>, so it is announced and clickable."""
    html = await (await client.get(path)).text()
    labelled = set(re.findall(r'<label[^>]*\bfor="([^"]+)"', html))
    fields = re.findall(r'<(?:input|select)\b[^>]*\bid="([^"]+)"', html)
    assert fields
    assert set(fields) <= labelled, set(fields) - labelled


@pytest.mark.parametrize("path", PAGES)
async def test_page_refers_only_to_files_it_serves(client: Client, path: str) -> None:
    """Every script and stylesheet a page names is served from /static/ with the policy and a right type."""
    html = await (await client.get(path)).text()
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(r.endswith(".js") for r in refs)
    assert any(r.endswith(".css") for r in refs)
    for ref in refs:
        response = await client.get(ref)
        assert response.status == 200, ref
        assert response.headers["Content-Security-Policy"] == CSP
        expected = "text/css" if ref.endswith(".css") else "javascript"
        assert expected in response.content_type, (ref, response.content_type)


def test_modules_import_only_files_that_exist() -> None:
    """Each ES module imports siblings that ship in verifier/web/static/."""
    for module in STATIC.glob("*.js"):
        for name in re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8")):
            assert (STATIC / name).is_file(), f"{module.name} imports missing {name}"


async def test_vendored_decoder_ships_with_its_licence(client: Client) -> None:
    """The vendored jsQR decoder is served, and its Apache-2.0 licence sits beside it."""
    response = await client.get("/static/vendor/jsqr/jsQR.js")
    assert response.status == 200
    assert "jsQR" in await response.text()
    assert "Apache License" in (STATIC / "vendor" / "jsqr" / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/nothing.js", "/static/"])
async def test_static_serves_nothing_outside_its_folder(client: Client, path: str) -> None:
    """Paths that leave the static folder, missing files and the folder itself are not served."""
    response = await client.get(path)
    assert response.status in (403, 404)
    assert "add_routes" not in await response.text()


async def test_dashboard_carries_the_names_it_draws(client: Client) -> None:
    """The dashboard page embeds reason, licence and scenario names for its charts, in both languages."""
    html = await (await client.get("/dashboard")).text()
    raw = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    assert raw is not None
    data = json.loads(raw.group(1))
    assert data["reasons"]["REPLAYED"] == {"zh": MESSAGES["REPLAYED"][0], "en": MESSAGES["REPLAYED"][1]}
    assert data["types"]["driving-licence"]["zh"] == "中华人民共和国机动车驾驶证"
    assert data["scenarios"]["library-borrowing"]["zh"].startswith("川渝两地")
    assert data["provinces"] == {"SC": "四川", "CQ": "重庆"}


async def test_me_names_the_counter_and_its_businesses(client: Client, scene: Scene) -> None:
    """A counter's key gets its id, name, province and allowed scenarios with their Chinese names."""
    response = await client.get("/v1/counters/me", headers=scene.auth("sc-legal-service-chengdu-01"))
    assert response.status == 200
    me = await response.json()
    assert me["id"] == "sc-legal-service-chengdu-01"
    assert me["name_zh"] == "成都市公共法律服务中心01号窗口"
    assert me["province"] == "SC"
    assert me["province_name_zh"] == "四川"
    assert [s["code"] for s in me["scenarios"]] == ["notary-driving-licence", "justice-admin"]
    assert me["scenarios"][0]["name_zh"] == "到公证机构申办机动车驾驶证公证时通过指定APP亮证"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer cq-notary-zhixin-01.wrong"}, {"Authorization": "Basic abc"}],
    ids=["no-key", "wrong-key", "not-bearer"],
)
async def test_me_refuses_without_a_counter_key(client: Client, headers: dict[str, str]) -> None:
    """No key, a wrong key or another scheme is a 401 problem asking for a Bearer key."""
    response = await client.get("/v1/counters/me", headers=headers)
    await assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_me_refuses_the_administrator(client: Client, scene: Scene) -> None:
    """The administrator's key is not a counter's: /v1/counters/me answers 401."""
    response = await client.get("/v1/counters/me", headers=scene.admin())
    await assert_problem(response, 401, "counter")


async def test_api_answers_do_not_carry_the_page_policy(client: Client) -> None:
    """The JSON API is left as it was: the page headers are only on pages and their files."""
    response = await client.get("/healthz")
    assert response.status == 200
    assert "Content-Security-Policy" not in response.headers
