"""The package's exceptions. Decisions are values, never exceptions; these are for set-up and usage.

VerifierError                 root; ``code`` is a stable machine code
├── CatalogueError            a data/ file is unreadable, invalid, or names what does not exist
├── UsageError                a command's arguments do not fit the catalogue (exit 2)
├── KeyStoreError             the issuer's key state cannot be read or written
└── StoreUnavailable          the state store cannot be reached now (HTTP 503)
"""

from __future__ import annotations


class VerifierError(Exception):
    """Root of the package's exceptions."""

    code = "VERIFIER_ERROR"


class CatalogueError(VerifierError):
    """The catalogue in ``data/`` is broken; ``problems`` names file, entry and field of each."""

    code = "CATALOGUE_INVALID"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(VerifierError):
    """A request the catalogue does not allow, with a message that says what is allowed."""

    code = "USAGE"


class KeyStoreError(VerifierError):
    """The issuer's key state is missing or unreadable."""

    code = "KEY_STORE"


class StoreUnavailable(VerifierError):
    """The state store (Redis) cannot be reached; the scan cannot be decided now."""

    code = "STORE_UNAVAILABLE"
