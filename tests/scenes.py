"""Building blocks of the integration tests: the real keys, the apps, counter keys, and the service
built through its factory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.helpers import Client
from verifier.adapters.api_keys import ADMIN, ApiKeys
from verifier.adapters.trust_source import JwksTrustSource
from verifier.core.catalogue import Catalogue
from verifier.issuer.apps import App, apps
from verifier.issuer.keys import KeyRing, KeyStore
from verifier.service.ports import ScanStore
from verifier.service.settings import Settings
from verifier.web.app import create_app


@dataclass
class Scene:
    """Both provinces' apps and a key file with counter keys issued on demand."""

    catalogue: Catalogue
    keyring: KeyRing
    api_keys: ApiKeys
    _keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, catalogue: Catalogue, directory: Path) -> Scene:
        """Real keys in the session's state folder; API keys in ``directory``."""
        ring = KeyStore(catalogue.units.values()).keyring(time.time())
        return cls(catalogue, ring, ApiKeys(directory / "api-keys.json"))

    @property
    def apps(self) -> dict[str, App]:
        """The five apps."""
        return apps(self.catalogue, self.keyring)

    def auth(self, principal: str) -> dict[str, str]:
        """The Authorization header of a counter (or ADMIN)."""
        if principal not in self._keys:
            self._keys[principal] = self.api_keys.issue(principal, replace=True)  # a key file two scenes may share
        return {"Authorization": f"Bearer {self._keys[principal]}"}

    def admin(self) -> dict[str, str]:
        """The administrator's Authorization header."""
        return self.auth(ADMIN)

    def app(self, settings: Settings | None = None, store: ScanStore | None = None) -> web.Application:
        """The verifier app through its factory, trusting this scene's keys."""
        return create_app(
            settings or Settings(),
            store=store,
            trust=JwksTrustSource.static(self.keyring.trust_list()),
            catalogue=self.catalogue,
            api_keys=self.api_keys,
        )

    async def post_scan(
        self, client: Client, counter: str, token: str, scenario: str = "notary-driving-licence"
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/scans as ``counter``: the status and the body (a decision or a problem)."""
        body = {"token": token, "scenario": scenario}
        async with client.post("/v1/scans", json=body, headers=self.auth(counter)) as response:
            return response.status, await response.json(content_type=None)

    def driving_licence(self, province: str = "SC", **options: object) -> str:
        """A fresh driving licence token from 交管12123."""
        return self.apps["jiaoguan-12123"].present("driving-licence", province, **options).token  # type: ignore[arg-type]
