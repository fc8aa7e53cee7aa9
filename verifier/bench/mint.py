"""Tokens for ``verifier bench``: Sichuan driving licences of distinct licence numbers (citizen ID numbers),
minted by the mock issuer with the Sichuan police's key of one algorithm from the bench's own state
folder, as request bodies for the counter."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import Catalogue
from verifier.issuer.keys import DEFAULT_ALG, KeyRing, KeyStore
from verifier.issuer.mint import MAX_TTL, citizen_id, mint

_CHUNK = 2000  # tokens per task when minting in parallel
_shared: tuple[Catalogue, KeyRing, str, float, str] | None = None  # set before forking the minting pool


def _mint_range(bounds: tuple[int, int]) -> list[dict[str, Any]]:
    assert _shared is not None  # noqa: S101 - set by mint_bodies before the pool forks
    catalogue, ring, scenario, now, alg = _shared
    bodies = []
    for i in range(*bounds):
        token = mint(
            catalogue,
            ring,
            licence_type="driving-licence",
            province="SC",
            channel="jiaoguan-12123",
            now=now,
            ttl=MAX_TTL,
            licence_no=citizen_id(i),
            alg=alg,
        ).token
        bodies.append({"token": token, "scenario": scenario, "serial_no": f"BENCH-{i:08d}", "operator": "bench"})
    return bodies


def publish_keys(state: Path, unit: str, algs: list[str]) -> None:
    """The mock issuer's keys in ``state``, made and published (``jwks.json``) before the service starts: the
    service only reads them, and is not ready until they are there. ``unit`` gets a key of each of ``algs``
    beside its ES256 one, so that the bench can sign with any of them."""
    store = KeyStore(load_catalogue().units.values(), directory=state)
    store.keyring()
    for alg in algs:
        if alg != DEFAULT_ALG:
            store.rotate(unit, alg=alg)


def mint_bodies(state: Path, start: int, count: int, scenario: str, alg: str = "ES256") -> list[dict[str, Any]]:
    """``count`` request bodies with the citizen ID numbers ``start``… of :func:`~verifier.issuer.mint.citizen_id`
    (each token lives ``MAX_TTL``), signed with the Sichuan police's ``alg`` key, minted on every core when there
    are many."""
    global _shared  # noqa: PLW0603 - read by the forked minting processes
    catalogue = load_catalogue()
    ring = KeyStore(catalogue.units.values(), directory=state).keyring()
    _shared = (catalogue, ring, scenario, time.time(), alg)
    chunks = [(i, min(i + _CHUNK, start + count)) for i in range(start, start + count, _CHUNK)]
    workers = min(len(chunks), os.cpu_count() or 1)
    if workers <= 1:
        return [body for chunk in chunks for body in _mint_range(chunk)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return [body for part in pool.map(_mint_range, chunks) for body in part]
