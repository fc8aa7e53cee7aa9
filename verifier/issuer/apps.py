"""The five simulated apps (亮证渠道). Each asks the issuer for a token when its user shows a
licence; the catalogue decides what an app may show, and :func:`verifier.issuer.mint.mint` enforces it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verifier.core.catalogue import PROVINCES, Catalogue, Channel
from verifier.issuer.keys import KeyRing
from verifier.issuer.mint import Minted, allowed_channels, mint


@dataclass(frozen=True, slots=True)
class App:
    """One app: 天府通办 and 四川人社 show Sichuan licences, 渝快办 and 重庆人社 Chongqing ones, and the
    national 交管12123 both."""

    channel: Channel
    catalogue: Catalogue
    keyring: KeyRing
    clock: Callable[[], float] = field(default=time.time)

    def can_show(self, licence_type: str, province: str) -> bool:
        """Whether this app may show ``licence_type`` issued in ``province``."""
        lt = self.catalogue.licences.get(licence_type)
        return lt is not None and lt.mintable and self.channel.code in allowed_channels(self.catalogue, lt, province)

    def showable(self) -> list[tuple[str, str]]:
        """Every (licence type, province) this app may show, in the order of the official list."""
        return [(lt.code, p) for lt in self.catalogue.by_seq() for p in PROVINCES if self.can_show(lt.code, p)]

    def present(self, licence_type: str, province: str, *, now: float | None = None, **options: Any) -> Minted:
        """A fresh token for the user's licence; refused (``MintRefusedError``) if this app may not show it.
        ``options`` are those of :func:`~verifier.issuer.mint.mint` (holder, licence_no, ttl, unit, …)."""
        return mint(
            self.catalogue,
            self.keyring,
            licence_type=licence_type,
            province=province,
            channel=self.channel.code,
            now=self.clock() if now is None else now,
            **options,
        )


def apps(catalogue: Catalogue, keyring: KeyRing, *, clock: Callable[[], float] = time.time) -> dict[str, App]:
    """One app per channel in ``data/channels.toml``, by channel code."""
    return {code: App(ch, catalogue, keyring, clock) for code, ch in catalogue.channels.items()}
