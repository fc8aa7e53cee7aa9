"""RFC 9457 problem details: every error that is not a decision leaves the service as one."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from verifier.errors import VerifierError

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


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """A problem+json response."""
    slug, title = TITLES.get(status, ("error", "错误 / Error"))
    body = {"type": _BASE + slug, "title": title, "status": status, "detail": detail, **extra}
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type=PROBLEM_TYPE,
        charset="utf-8",
        headers=headers,
    )


class ProblemError(VerifierError):
    """Raised by handlers to answer with a problem: ``status``, ``detail`` and extra members."""

    code = "HTTP_PROBLEM"

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extra = extra

    def response(self) -> web.Response:
        """This error as a response."""
        return problem(self.status, self.detail, headers=self.headers, **self.extra)
