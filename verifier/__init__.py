"""川渝电子证照亮证互认 — decide whether an electronic licence shown at a counter is accepted.

The public surface is listed in ``__all__``. Importing the package loads nothing else: the names below
are looked up when first used, so ``import verifier.core.token`` stays as pure as the core is.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Catalogue", "CatalogueError", "Counter", "LicenceType", "VerifierError", "load_catalogue"]

_HOMES = {
    "Catalogue": "verifier.core.catalogue",
    "Counter": "verifier.core.catalogue",
    "LicenceType": "verifier.core.catalogue",
    "CatalogueError": "verifier.errors",
    "VerifierError": "verifier.errors",
    "load_catalogue": "verifier.adapters.catalogue_files",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'verifier' has no attribute {name!r}")
