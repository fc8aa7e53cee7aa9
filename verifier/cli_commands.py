"""The list of command groups registered by :func:`verifier.cli.build_parser`; each entry adds its
subcommands to the parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from verifier import bench, issuer_cli, service_cli

REGISTRARS: list[Callable[[Any], None]] = [service_cli.register, issuer_cli.register, bench.register]
