"""川渝电子证照亮证互认 — decide whether an electronic licence shown at a counter is accepted.

The public surface is listed in ``__all__``; everything else is internal.
"""

from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import Catalogue, Counter, LicenceType
from verifier.errors import CatalogueError, VerifierError

__all__ = ["Catalogue", "CatalogueError", "Counter", "LicenceType", "VerifierError", "load_catalogue"]
