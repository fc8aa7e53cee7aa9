"""RFC 9457 problem details: every error that is not a decision leaves the service as one, its ``title`` and
its ``detail`` in Chinese and English ("中文 / English"): a clerk and an integrator both read them."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from verifier.errors import Finding, VerifierError

PROBLEM_TYPE = "application/problem+json"
_BASE = "https://cy-licence.example/problems/"

# status -> (slug, title in Chinese and English)
TITLES: dict[int, tuple[str, str]] = {
    400: ("malformed-request", "请求格式错误 / Malformed request"),
    401: ("unauthorized", "缺少或错误的密钥 / Missing or wrong API key"),
    403: ("forbidden", "无权访问 / Not allowed"),
    404: ("not-found", "未找到 / Not found"),
    405: ("method-not-allowed", "不支持的方法 / Method not allowed"),
    413: ("too-large", "请求过大 / Request too large"),
    414: ("request-line-too-long", "请求行过长 / Request line too long"),
    415: ("unsupported-media-type", "请使用 application/json / Use application/json"),
    422: ("unprocessable", "请求内容不被受理 / Request not processable"),
    429: ("too-many-requests", "核验过于频繁，请稍后重试 / Too many scans, retry shortly"),
    431: ("headers-too-large", "请求头过大 / Request headers too large"),
    500: ("internal", "服务内部错误 / Internal error"),
    503: ("unavailable", "暂时无法核验，请稍后重试 / Cannot verify now, retry shortly"),
    504: ("timeout", "处理超时 / Timed out"),
}

# What aiohttp's own HTTP errors (no route, a method the route lacks, a body past the limit…) say, in Chinese;
# its English reason phrase follows.
_HTTP_ZH: dict[int, str] = {
    400: "请求有误",
    404: "没有这个地址",
    405: "此地址不支持这个请求方法",
    413: "请求体超过上限",
    414: "请求地址过长",
    431: "请求头过大",
}

# The readiness checks (verifier.errors.Finding.check) in Chinese; their details say the rest in English.
CHECKS_ZH: dict[str, str] = {
    "trust": "信任列表未加载",
    "reachable": "无法连接状态存储",
    "unchecked": "状态存储尚未检查",
    "eviction": "Redis 可能淘汰一次一验记录",
    "persistence": "Redis 不落盘，重启会丢失一次一验记录",
    "replicas": "确认写入的副本不足",
    "loading": "Redis 正在加载数据",
    "write": "Redis 拒绝写入",
    "clock": "本实例时钟与 Redis 相差过大",
    "check": "无法检查状态存储",
}

_BILINGUAL = re.compile(r"[\u4e00-\u9fff].* / .*[A-Za-z]", re.DOTALL)


def is_bilingual(text: str) -> bool:
    """Whether ``text`` reads "中文 / English", as every title and detail does (the OpenAPI document's pattern)."""
    return _BILINGUAL.search(text) is not None


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """A problem+json response; ``detail`` already in both languages ("中文 / English")."""
    slug, title = TITLES.get(status, ("error", "错误 / Error"))
    body = {"type": _BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type=PROBLEM_TYPE,
        charset="utf-8",
        headers=headers,
    )


def http_problem(exc: web.HTTPException) -> web.Response:
    """One of aiohttp's own HTTP errors (4xx and 5xx) as a problem, keeping its ``Allow`` header."""
    zh = _HTTP_ZH.get(exc.status, "请求未被受理")
    en = exc.reason or exc.text or "refused"
    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return problem(exc.status, f"{zh} / {en}", headers=allow)


def halves(text: str, zh: str = "未能完成") -> tuple[str, str]:
    """A message that says both ("中文 / English…") as (Chinese, English); one in English only as ``zh`` and it."""
    if " / " in text and is_bilingual(text):
        first, rest = text.split(" / ", 1)
        return first, rest
    return zh, text


def findings_detail(findings: tuple[Finding, ...]) -> tuple[str, str]:
    """Failing checks in one detail: their Chinese names, and their English details."""
    return "；".join(dict.fromkeys(finding_zh(f) for f in findings)), "; ".join(f.detail for f in findings)


def finding_zh(finding: Finding) -> str:
    """A failing check's name in Chinese."""
    return CHECKS_ZH.get(finding.check, "检查未通过")


class ProblemError(VerifierError):
    """Raised by handlers to answer with a problem: ``status``, the detail in Chinese (``zh``) and English
    (``en``), answered as ``detail`` "中文 / English", and extra members."""

    code = "HTTP_PROBLEM"

    def __init__(self, status: int, zh: str, en: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        self.detail = f"{zh} / {en}"
        super().__init__(self.detail)
        self.status = status
        self.headers = headers
        self.extra = extra

    def response(self) -> web.Response:
        """This error as a response."""
        return problem(self.status, self.detail, headers=self.headers, **self.extra)
