"""`verifier serve` answers POST /v1/scans without routing each request (verifier.web.server's direct
routes): every answer must be the one routing gives, and anything else must still be routed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.issuer.mint import citizen_id
from verifier.web.server import ProblemRunner

NOTARY = "cq-notary-zhixin-01"
SCENARIO = "notary-driving-licence"


class Served:
    """One app on a loopback port, and how often its router was asked to resolve a request."""

    def __init__(self, runner: web.AppRunner, app: web.Application) -> None:
        self.runner, self.app, self.resolved = runner, app, 0
        resolve = app.router.resolve

        async def counted(request: web.Request) -> Any:
            self.resolved += 1
            return await resolve(request)

        app.router.resolve = counted  # type: ignore[method-assign]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"


async def _serve(runner_class: type[web.AppRunner], scene: Scene) -> Served:
    app = scene.app(store=MemoryStore())
    runner = runner_class(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return Served(runner, app)


@pytest.fixture
async def both(scene: Scene) -> AsyncIterator[tuple[Served, Served]]:
    """The app served directly (as `verifier serve` does) and routed (aiohttp's own runner)."""
    direct, routed = await _serve(ProblemRunner, scene), await _serve(web.AppRunner, scene)
    yield direct, routed
    await direct.runner.cleanup()
    await routed.runner.cleanup()


def _cases(scene: Scene) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(name, method and path, headers, body) of scans good and bad."""
    auth = {**scene.auth(NOTARY), "Content-Type": "application/json"}
    token = scene.driving_licence("SC", licence_no=citizen_id(777001))
    good = f'{{"token": "{token}", "scenario": "{SCENARIO}"}}'.encode()
    return [
        ("accepted", "POST /v1/scans", auth, good),
        ("re-scan", "POST /v1/scans", auth, good),
        ("no key", "POST /v1/scans", {"Content-Type": "application/json"}, good),
        ("bad json", "POST /v1/scans", auth, b'{"token": '),
        ("wrong type", "POST /v1/scans", {**auth, "Content-Type": "text/plain"}, good),
        ("unknown scenario", "POST /v1/scans", auth, good.replace(SCENARIO.encode(), b"nothing")),
        ("forged", "POST /v1/scans", auth, good.replace(token[-8:].encode(), b"AAAAAAAA")),
        ("get", "GET /v1/scans", auth, b""),
        ("query", "POST /v1/scans?x=1", auth, good),
    ]


def _comparable(status: int, headers: Any, body: bytes) -> tuple[Any, ...]:
    """What must be equal: status, content type, Allow, and the body without the scan's id and time."""
    document = None
    if body:
        document = json.loads(body)
        if isinstance(document, dict):
            document.pop("scan_id", None)
            document.pop("checked_at", None)
    return status, headers.get("Content-Type"), headers.get("Allow"), document


async def test_direct_answers_equal_routed_answers(both: tuple[Served, Served], scene: Scene) -> None:
    """The same requests, in the same order, get the same answers from both; the scans skip the router."""
    direct, routed = both
    answers: dict[str, list[tuple[Any, ...]]] = {"direct": [], "routed": []}
    async with aiohttp.ClientSession() as session:
        for served, name in ((direct, "direct"), (routed, "routed")):
            for _, target, headers, body in _cases(scene):
                method, path = target.split(" ")
                async with session.request(method, served.url + path, headers=headers, data=body) as response:
                    answers[name].append(_comparable(response.status, response.headers, await response.read()))
    assert answers["direct"] == answers["routed"]
    statuses = [answer[0] for answer in answers["direct"]]
    assert statuses == [200, 200, 401, 400, 415, 422, 200, 405, 200]
    assert [a[3]["decision"] for a in answers["direct"][:2]] == ["accepted", "accepted"]
    assert answers["direct"][1][3]["cached"] is True
    assert direct.resolved == 2  # only GET /v1/scans and the path with a query string were routed
    assert routed.resolved == len(statuses)


async def test_expect_continue_is_routed(both: tuple[Served, Served], scene: Scene) -> None:
    """A scan with ``Expect: 100-continue`` goes through aiohttp's routing, which answers the expectation."""
    direct, _ = both
    _, _, headers, body = _cases(scene)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.post(direct.url + "/v1/scans", headers=headers, data=body, expect100=True) as response,
    ):
        assert response.status == 200
        assert (await response.json())["decision"] == "accepted"
    assert direct.resolved == 1
