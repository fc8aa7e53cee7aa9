"""Settings of the verifier service, from the command line or the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.core.decide import DEFAULT_POLICY, Policy


@dataclass(frozen=True, slots=True)
class JwksSource:
    """One place issuer public keys come from: a file or an http(s) URL, vouching for the issuing units of
    one province (``SC``, ``CQ``) or, when ``province`` is None, of both."""

    location: str
    province: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """How one verifier instance runs."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None  # None: the embedded in-process store (one instance only)
    # Where the trust list comes from: one source for both provinces, or one per province; (): the jwks.json the
    # local mock issuer publishes in the state folder. verifier.adapters.trust_source.parse_jwks_sources reads --jwks.
    jwks: tuple[JwksSource, ...] = ()
    data_dir: str | None = None  # the rules (data/); None: the packaged copy
    state_dir: str | None = None  # None: VERIFIER_STATE_DIR, $XDG_STATE_HOME/cy-licence-verifier, ~/.local/state/…
    secret_file: str | None = None  # the deployment secret keying licence identities; None: the state folder's
    audit_url: str | None = None  # PostgreSQL for the audit trail; None: SQLite in the state folder
    audit_retention_days: int = 400
    separate_audit_writer: bool = False  # a `verifier audit writer` process writes the trail, not this instance
    audit_claim_idle: float = 30.0  # an event taken and not acknowledged this long goes to another writer
    trust_refresh_seconds: float = 60.0
    store_timeout: float = 1.0  # a hung Redis never holds a counter longer than about this
    record_ttl: int = 24 * 3600
    # The largest clock difference allowed between an instance and the store: one-time-use claims outlive
    # every instance's acceptance window by this much, and an instance off by more than half of it is
    # not ready and decides nothing.
    max_clock_skew: int = 60
    min_replica_acks: int = 0  # replicas that must hold a claim or a revocation before it counts (WAIT)
    allow_volatile_store: bool = False  # accept a Redis that keeps nothing on disk: tests and benchmarks only
    store_check_seconds: float = 5.0  # how often the store's safety and clock are checked
    counter_rate: float = 10.0  # scans per second one counter may post, across every instance
    counter_burst: int = 30  # scans a counter may post at once before counter_rate applies
    revocation_days: int = 90  # how long a revocation is kept (0: forever)
    header_timeout: float = 10.0  # a request head not complete within this closes the connection
    keepalive_timeout: float = 75.0  # an idle keep-alive connection is closed after this
    max_connections: int = 800  # open connections per instance; beyond it, 503
    workers: int = 1
    log_level: str = "info"
    max_body_bytes: int = 16 * 1024
    retry_after_seconds: int = 2
    policy: Policy = field(default=DEFAULT_POLICY)
