"""Settings of the verifier service, from the command line or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.core.decide import DEFAULT_POLICY, Policy


@dataclass(frozen=True, slots=True)
class Settings:
    """How one verifier instance runs."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None  # None: the embedded in-process store (one instance only)
    jwks: str | None = None  # file path or URL of the issuer's JWKS; None: the local state folder's
    trust_refresh_seconds: float = 60.0
    store_timeout: float = 1.0  # a hung Redis never holds a counter longer than about this
    record_ttl: int = 24 * 3600
    max_body_bytes: int = 16 * 1024
    retry_after_seconds: int = 2
    policy: Policy = field(default=DEFAULT_POLICY)
