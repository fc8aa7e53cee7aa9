"""A scan under way when the rules are reloaded finishes on the rules it started with; the next scan is
decided by the new ones. The app runs through its factory on the embedded store, held at the scan's
commit while ``POST /v1/admin/reload`` swaps in an edited copy of ``data/``."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ClientFactory
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore
from verifier.adapters.paths import data_dir
from verifier.service.ports import Commit, ScanRecord

COUNTER = "sc-transport-enforcement-01"
BODY_SCENARIO = "transport-service-enforcement"
OLD_NAME, NEW_NAME = 'name_zh = "道路运输从业资格证"', 'name_zh = "道路运输从业资格证（已补全）"'
LOST = 'lost = ["pilot_scope"]\n'
FILLED = (
    'pilot_scope.SC = { shape = "province", label_zh = "四川全省范围内" }\n'
    'pilot_scope.CQ = { shape = "province", label_zh = "重庆全市范围内" }\n'
)


class HeldStore(MemoryStore):
    """The embedded store, whose next commit waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def commit(self, commit: Commit) -> tuple[ScanRecord, bool, bool]:
        """See :meth:`MemoryStore.commit`; the first one waits for :attr:`release`."""
        if not self.release.is_set():
            self.holding.set()
            await self.release.wait()
        return await super().commit(commit)


async def test_a_scan_under_way_finishes_on_the_rules_it_started_with(
    aiohttp_client: ClientFactory, scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row 6 is RULES_INCOMPLETE; a scan is held at its commit while the filled-in, renamed row is
    reloaded: it still answers RULES_INCOMPLETE under the old name, and the next scan is accepted under the new."""
    data = tmp_path / "data"
    shutil.copytree(data_dir(), data)
    monkeypatch.setenv("VERIFIER_DATA_DIR", str(data))
    store = HeldStore()
    client = await aiohttp_client(scene.app(store=store))

    async def scan() -> dict[str, Any]:
        token = scene.apps["tianfu-tongban"].present("transport-qual", "SC").token
        body = {"token": token, "scenario": BODY_SCENARIO}
        async with client.post("/v1/scans", json=body, headers=scene.auth(COUNTER)) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    under_way = asyncio.create_task(scan())
    await store.holding.wait()
    path = data / "licence-types.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count(LOST) == 1
    assert text.count(OLD_NAME) == 1
    path.write_text(text.replace(LOST, FILLED).replace(OLD_NAME, NEW_NAME), encoding="utf-8")
    async with client.post("/v1/admin/reload", headers=scene.admin()) as response:
        assert response.status == 200
    store.release.set()
    old = await under_way
    assert [r["code"] for r in old["reasons"]] == ["RULES_INCOMPLETE"]
    assert old["licence"]["name_zh"] == "道路运输从业资格证"
    new = await scan()
    assert (new["decision"], new["licence"]["name_zh"]) == ("accepted", "道路运输从业资格证（已补全）")
