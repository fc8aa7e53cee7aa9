"""The demo's hand-built token (verifier.cli.demo): it must be in the current token format, so that the
story's "app not designated" step is rejected for the channel and for nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from tests.forge import NOW, codes, make_kit
from verifier.adapters.paths import schema_dir
from verifier.cli.demo import _foreign_channel_token
from verifier.core.catalogue import Catalogue
from verifier.core.token import parse


def test_the_foreign_channel_token_is_refused_only_for_its_channel(catalogue: Catalogue, tmp_path: Path) -> None:
    """A Sichuan lawyer's licence shown through 交管12123 is rejected at a Chongqing justice bureau for
    CHANNEL_NOT_ALLOWED alone, and its claims match the token schema."""
    kit = make_kit(catalogue, tmp_path)
    token = _foreign_channel_token(catalogue, kit.keyring, NOW)
    decision = kit.decide(token, "cq-justice-bureau-01", "justice-admin")
    assert codes(decision) == {"CHANNEL_NOT_ALLOWED"}
    assert decision.licence is not None
    assert decision.licence.type == "lawyer-licence"
    schema = json.loads((schema_dir() / "presentation-token.schema.json").read_text(encoding="utf-8"))
    parsed = parse(token)
    assert list(Draft202012Validator(schema).iter_errors({"header": parsed.header, "claims": parsed.claims})) == []
