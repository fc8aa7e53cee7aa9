"""The people's side of the service: the counter console (``/console``) and the recognition dashboard
(``/dashboard``), plain server-rendered HTML with a little JS and CSS from ``verifier/web/static/``.

The pages themselves are public and hold no data; they ask the JSON API with the key the clerk or the
administrator types in, which stays in the browser tab's sessionStorage. Every page and static file
leaves with a self-only Content-Security-Policy: no inline script, style or event handler anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from verifier.core.catalogue import PROVINCE_NAMES_ZH
from verifier.core.reasons import MESSAGES
from verifier.web import appkeys

# The API's own authentication, so that the console's key is checked exactly as a scan's is.
from verifier.web.edge import counter_of
from verifier.web.problems import ProblemError

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_BAR = (
    '<header class="bar"><a class="skip" href="#main" data-en="Skip to content">跳到正文</a>'
    '<h1 data-en="{title_en}">{title}</h1><p class="who" id="who" hidden></p>'
    '<button type="button" id="lang" class="quiet" aria-pressed="false" data-en="中文">English</button>'
    '<button type="button" id="signout" class="quiet" hidden data-en="Sign out">退出</button></header>'
)
_SIGNIN = """<section id="signin" class="panel signin">
<form id="signin-form" autocomplete="off">
<h2 data-en="{heading_en}">{heading}</h2>
<label for="key" data-en="{label_en}">{label}</label>
<input id="key" name="key" type="password" required autocomplete="off" spellcheck="false"
 aria-describedby="key-help signin-error">
<p id="key-help" class="help" data-en="{help_en}">{help}</p>
<button type="submit" data-en="Sign in">登录</button>
<p id="signin-error" class="error" role="alert"></p>
</form>
</section>"""


def _page(title: str, body: str, *, style: str, scripts: tuple[str, ...], data: dict[str, Any] | None = None) -> str:
    data_block = (
        '<script type="application/json" id="page-data">'
        + json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
        + "</script>"
        if data is not None
        else ""
    )
    tags = "".join(
        f'<script defer src="/static/{s}"></script>' if s.startswith("vendor/")
        else f'<script type="module" src="/static/{s}"></script>'
        for s in scripts
    )  # fmt: skip
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/common.css">'
        f'<link rel="stylesheet" href="/static/{style}">'
        f"{data_block}{tags}</head><body>{body}</body></html>"
    )


# Pages and their files: self-only CSP, no sniffing, no referrer, not framed. Set by their handlers, not by
# an on_response_prepare signal, which would run for every answer of the API as well (scans included).
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)


_CONSOLE = """<main id="main">
{signin}
<section id="desk" class="desk" hidden>
<form id="session-form" class="session" autocomplete="off">
<label for="scenario" data-en="Business (scenario)">办理业务</label>
<select id="scenario" name="scenario" required></select>
<label for="item" class="item-field" hidden data-en="川渝通办 item">通办事项</label>
<select id="item" name="item" class="item-field" hidden></select>
<label for="serial" data-en="Business serial no.">业务流水号</label>
<input id="serial" name="serial" maxlength="64" spellcheck="false">
<label for="operator" data-en="Operator ID">操作员</label>
<input id="operator" name="operator" maxlength="64" spellcheck="false">
</form>
<form id="scan-form" class="scan" autocomplete="off">
<label for="token" data-en="Shown code: scan with the scanner, or paste and press Enter">
亮证码：用扫码枪扫码，或粘贴后按回车</label>
<div class="row">
<input id="token" name="token" required spellcheck="false" autocomplete="off" class="token"
 aria-describedby="scan-help">
<button type="submit" id="scan-button" data-en="Verify">核验</button>
<button type="button" id="camera" class="quiet" hidden data-en="Camera">摄像头扫码</button>
<label class="button quiet" for="image" id="image-label" data-en="Image…">选择图片…</label>
<input id="image" type="file" accept="image/*" class="visually-hidden" tabindex="-1">
</div>
<p id="scan-help" class="help" data-en="A QR image can also be dropped anywhere on this page.">
也可将亮证码图片拖放到本页面任意位置。</p>
</form>
<div id="camera-box" class="camera" hidden><video id="video" muted playsinline></video></div>
<section id="result" class="result idle" aria-live="polite" aria-atomic="true" tabindex="-1">
<p class="verdict" id="verdict" data-en="Waiting for a scan">等待扫码</p>
</section>
</section>
<div id="drop-hint" class="drop-hint" hidden data-en="Drop the QR image to verify">松开鼠标即核验图片中的亮证码</div>
</main>"""


async def console(request: web.Request) -> web.Response:
    """GET /console: the counter console."""
    signin = _SIGNIN.format(
        heading="窗口登录",
        heading_en="Counter sign-in",
        label="窗口密钥",
        label_en="Counter API key",
        help="由管理员用 verifier counters key 生成；仅保存在本标签页中。",
        help_en="Issued with `verifier counters key`; kept in this browser tab only.",
    )
    body = _BAR.format(
        title="川渝电子证照亮证互认 · 窗口核验", title_en="Sichuan–Chongqing licence check · Counter"
    ) + _CONSOLE.format(signin=signin)
    return _html(
        _page(
            "窗口核验 · 川渝电子证照亮证互认",
            body,
            style="console.css",
            scripts=("vendor/jsqr/jsQR.js", "console.js"),
        )
    )


_DASHBOARD = """<main id="main">
{signin}
<section id="board" class="board" hidden>
<p class="status" id="status" role="status"></p>
<div class="kpis" id="kpis"></div>
<section class="card"><h2 data-en="Top problems">主要问题</h2><ol id="problems" class="problems"></ol></section>
<section class="card">
<h2 data-en="Two-way recognition: issuing province × counter province">两地互认：签发地 × 核验地</h2>
<div id="matrix"></div></section>
<section class="card wide"><h2 data-en="Scans per minute (last 30 minutes)">每分钟核验量（近30分钟）</h2>
<div id="minutes" class="chart"></div></section>
<section class="card wide">
<h2 data-en="By licence type: acceptance and rejection reasons">按证照类型：通过率与不通过原因</h2>
<div id="types"></div></section>
<section class="card wide"><h2 data-en="By business scenario">按业务场景</h2><div id="scenarios"></div></section>
<section id="trend" class="trend" aria-labelledby="trend-title" hidden>
<div class="wide">
<h2 id="trend-title" data-en="Trend: the last 90 days, from the audit trail">趋势：近90天（核验留痕）</h2>
<p class="status" id="trend-status" role="status" data-en="Reading the reports…">正在读取报表……</p></div>
<section class="card wide"><h2 data-en="Daily scans and acceptance">每日核验量与通过率</h2>
<div id="trend-days" class="chart"></div></section>
<section class="card"><h2 data-en="By licence type">按证照类型</h2><div id="trend-types"></div></section>
<section class="card"><h2 data-en="By city">按城市</h2><div id="trend-cities"></div></section>
<section class="card wide"><h2 data-en="Top rejection reasons per week">每周主要不通过原因</h2>
<div id="trend-weeks"></div></section>
</section>
</section>
</main>"""


async def dashboard(request: web.Request) -> web.Response:
    """GET /dashboard: the recognition dashboard of the big-data centres."""
    cat = request.app[appkeys.SERVICE].catalogue
    signin = _SIGNIN.format(
        heading="管理员登录",
        heading_en="Administrator sign-in",
        label="管理员密钥",
        label_en="Administrator key",
        help="由 verifier admin-key 生成；仅保存在本标签页中。",
        help_en="Issued with `verifier admin-key`; kept in this browser tab only.",
    )
    data = {
        "provinces": PROVINCE_NAMES_ZH,
        "types": {lt.code: {"zh": lt.name_zh or lt.code, "en": lt.name_en or lt.code} for lt in cat.by_seq()},
        "scenarios": {s.code: {"zh": s.name_zh, "en": s.name_en} for s in cat.scenarios.values()},
        "reasons": {code: {"zh": zh, "en": en} for code, (zh, en) in MESSAGES.items()},
        # GB/T 2260 codes, for the trend by city
        "divisions": {d.code: {"zh": d.name_zh, "en": d.name_en} for d in cat.divisions.values()},
    }
    body = _BAR.format(
        title="川渝电子证照亮证互认 · 核验统计", title_en="Sichuan–Chongqing licence check · Statistics"
    ) + _DASHBOARD.format(signin=signin)
    return _html(
        _page("核验统计 · 川渝电子证照亮证互认", body, style="dashboard.css", scripts=("dashboard.js",), data=data)
    )


async def counters_me(request: web.Request) -> web.Response:
    """GET /v1/counters/me: the signed-in counter and the businesses it may do."""
    counter = counter_of(request)
    catalogue = request.app[appkeys.SERVICE].catalogue
    scenarios = catalogue.scenarios
    document = {
        "id": counter.id,
        "name_zh": counter.name_zh,
        "province": counter.province,
        "province_name_zh": PROVINCE_NAMES_ZH.get(counter.province, counter.province),
        "institution": {"code": counter.institution.code, "name_zh": counter.institution.name_zh},
        "scenarios": [
            {
                "code": code,
                "name_zh": scenarios[code].name_zh,
                "name_en": scenarios[code].name_en,
                # Each under the name this counter's province gives it (Chongqing's where it has its own).
                "items": [
                    {"item": it.seq, "name_zh": (counter.province == "CQ" and it.name_cq_zh) or it.name_zh}
                    for it in catalogue.scenario_items(code)
                ],
            }
            for code in counter.scenarios
            if code in scenarios
        ],
    }
    return web.Response(body=json.dumps(document, ensure_ascii=False).encode("utf-8"), content_type="application/json")


# The only files served under /static/: listed once at start, so no request path ever reaches the disk.
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _static_handler(root: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    files = {path.relative_to(root).as_posix(): path for path in root.rglob("*") if path.is_file()}

    async def static_file(request: web.Request) -> web.FileResponse:
        """GET /static/{name}: a script, stylesheet or licence file shipped with the pages."""
        path = files.get(request.match_info["name"])
        if path is None:
            raise ProblemError(404, "没有这个文件", "no such file")
        content_type = _TYPES.get(path.suffix, "text/plain; charset=utf-8")
        return web.FileResponse(path, headers={**_PAGE_HEADERS, "Content-Type": content_type})

    return static_file


def add_routes(app: web.Application) -> None:
    """Mount the console, the dashboard, their static files and ``/v1/counters/me`` on ``app``."""
    app.router.add_get("/console", console)
    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/v1/counters/me", counters_me)
    app.router.add_get("/static/{name:.+}", _static_handler(STATIC))
