"""Typed keys of the aiohttp application: the one place the shell's shared objects are named."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from verifier.adapters.api_keys import KeyLookup
from verifier.adapters.audit.trail import AuditTrail
from verifier.adapters.audit.writer import TrailWriter
from verifier.service.ports import AuditFeed
from verifier.service.scan import ScanService
from verifier.service.settings import Settings
from verifier.web.metrics import Metrics
from verifier.web.signins import SignInLog

if TYPE_CHECKING:
    from verifier.web.reload import RulesReloader

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", ScanService)
API_KEYS: web.AppKey[KeyLookup] = web.AppKey("api_keys")  # the key file (embedded) or the shared store's
METRICS = web.AppKey("metrics", Metrics)
RELOADER: web.AppKey[RulesReloader] = web.AppKey("reloader")
SIGN_INS = web.AppKey("sign_ins", SignInLog)
TRAIL = web.AppKey("trail", AuditTrail)  # the audit trail this instance reads (reports, usage log)
WRITER: web.AppKey[TrailWriter | None] = web.AppKey("writer")  # None: a separate process writes it
AUDIT_FEED: web.AppKey[AuditFeed] = web.AppKey("audit_feed")  # the store's audit events not yet written
