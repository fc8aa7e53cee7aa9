"""Where the package finds its data and keeps its local state."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$VERIFIER_DATA_DIR`` or the checkout's ``data/``."""
    return Path(os.environ.get("VERIFIER_DATA_DIR") or _ROOT / "data")


def schema_dir() -> Path:
    """The checkout's ``schemas/``."""
    return _ROOT / "schemas"


def state_dir() -> Path:
    """``$VERIFIER_STATE_DIR`` or ``.verifier/`` in the checkout: generated keys, the local trust
    list and counter key hashes. Git ignores it; private keys never leave it."""
    return Path(os.environ.get("VERIFIER_STATE_DIR") or _ROOT / ".verifier")
