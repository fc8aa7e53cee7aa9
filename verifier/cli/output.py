"""How commands print for machines."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(value: Any) -> None:
    """JSON for machines: UTF-8, Chinese as is, stable key order."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")
