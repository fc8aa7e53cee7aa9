"""The service's tests' desk: a scan service on either store, with a clock the test moves."""

from __future__ import annotations

import time
from typing import Any

from tests.scenes import Scene
from verifier.core.catalogue import Counter
from verifier.core.identity import Identities
from verifier.core.trust import TrustList
from verifier.service.ports import ScanStore
from verifier.service.scan import ScanResult, ScanService

NOTARY = "cq-notary-zhixin-01"
NOTARY_2 = "cq-notary-zhixin-02"
SCENARIO = "notary-driving-licence"


class SwappableTrust:
    """The trust-list port over a list the test changes, as a refresh would."""

    def __init__(self, current: TrustList) -> None:
        self.current = current

    @property
    def loaded(self) -> bool:
        """Loaded once it holds a key."""
        return bool(self.current.keys)

    async def refresh_for_unknown_kid(self) -> bool:
        """Nothing new to fetch: the test swaps the list itself."""
        return False


class Desk:
    """A scan service on ``store`` with a clock the test moves, and the counters it scans at."""

    def __init__(self, scene: Scene, store: ScanStore, trust: Any = None, **options: Any) -> None:
        self.scene = scene
        self.now = time.time()
        self.trust = trust or SwappableTrust(scene.keyring.trust_list())
        self.service = ScanService(
            scene.catalogue, self.trust, store, clock=lambda: self.now, identities=Identities(b"s" * 32), **options
        )

    def counter(self, counter_id: str = NOTARY) -> Counter:
        """A counter of the registry."""
        return self.scene.catalogue.counters[counter_id]

    async def scan(self, token: str, counter: str = NOTARY, scenario: str = SCENARIO, **fields: Any) -> ScanResult:
        """One scan, the store checked first (a service decides nothing on an unchecked store)."""
        if self.service.findings:
            await self.service.check_store()
        return await self.service.scan(self.counter(counter), token, scenario, **fields)
