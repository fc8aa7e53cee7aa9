"""The bench's tokens: with `--alg`, the Sichuan police's key of that algorithm signs them, and each is a
driving licence with a real citizen ID number of its own, as the verifier takes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.bench.mint import mint_bodies, publish_keys
from verifier.bench.run import ALGS, SCENARIO, SIGNING_UNIT
from verifier.core.catalogue import Catalogue, NumberFormat
from verifier.core.shape import number_problem
from verifier.core.token import parse


@pytest.mark.parametrize("alg", ALGS)
def test_tokens_are_signed_with_the_chosen_algorithm(catalogue: Catalogue, tmp_path: Path, alg: str) -> None:
    """After the bench's keys are made for ES256 and ``alg``, its bodies carry tokens of ``alg`` (an ES256
    key is there too, so the choice is the algorithm's, not the newest key's), each a citizen ID of its own."""
    publish_keys(tmp_path, SIGNING_UNIT, ["ES256", alg])
    bodies = mint_bodies(tmp_path, 5, 3, SCENARIO, alg)
    parsed = [parse(body["token"]) for body in bodies]
    assert {p.header["alg"] for p in parsed} == {alg}
    numbers = [p.claims["no"] for p in parsed]
    assert len(set(numbers)) == 3
    assert all(number_problem(NumberFormat("citizen-id"), n) is None for n in numbers)
    assert {body["scenario"] for body in bodies} == {SCENARIO}
