"""Typed keys of the aiohttp application: the one place the shell's shared objects are named."""

from __future__ import annotations

from aiohttp import web

from verifier.counter_keys import ApiKeys
from verifier.metrics import Metrics
from verifier.service import ScanService
from verifier.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", ScanService)
API_KEYS = web.AppKey("api_keys", ApiKeys)
METRICS = web.AppKey("metrics", Metrics)
