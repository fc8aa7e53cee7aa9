"""Fixtures of the web shell's tests."""

from __future__ import annotations

import pytest

from tests.helpers import Client, ClientFactory
from tests.scenes import Scene
from verifier.adapters.memory_store import MemoryStore


@pytest.fixture
async def client(aiohttp_client: ClientFactory, scene: Scene) -> Client:
    """The verifier app on the embedded store."""
    return await aiohttp_client(scene.app(store=MemoryStore()))
