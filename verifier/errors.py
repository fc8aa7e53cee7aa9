"""The package's exceptions: one root, each leaf with a stable machine ``code``. Decisions are values,
never exceptions; these are for tokens that cannot be read, set-up, usage and the state store.

VerifierError                      VERIFIER_ERROR     the root; ``code`` is a stable machine code
├── CatalogueError                 CATALOGUE_INVALID  a data/ file is unreadable, invalid, or names what does not exist
├── UsageError                     USAGE              a command's arguments do not fit the catalogue (exit 2)
│   ├── MintRefusedError           MINT_REFUSED       the issuer will not mint this token; ``field``, ``allowed``
│   ├── KeyExistsError             KEY_EXISTS         ``principal`` has an API key already (not replaced)
│   └── ReportRequestError         REPORT_REQUEST     a report's ``field`` (from, to, by) is not one it takes (HTTP 400)
├── KeyStoreError                  KEY_STORE          the issuer's key state cannot be read or written
├── TokenMalformedError            TOKEN_MALFORMED    not a compact JWS of our kind; ``reason`` is the decision's code
├── StoreUnavailableError          STORE_UNAVAILABLE  the state store cannot be reached or written now (HTTP 503)
│   ├── StoreUnsafeError           STORE_UNSAFE       it answers, but cannot guarantee one-time use now (HTTP 503)
│   └── StoreMisconfiguredError    STORE_MISCONFIGURED  it refuses the URL's set-up (a database it lacks, HTTP 503)
├── TrustNotLoadedError            TRUST_NOT_LOADED   no trust list loaded yet: nothing can be verified (HTTP 503)
├── RateLimitedError               RATE_LIMITED       a counter posts faster than its rate; ``retry_after`` s (HTTP 429)
└── ProblemError                   HTTP_PROBLEM       a request answered with problem+json (verifier.web.problems)

ProblemError lives beside the web shell (it is an HTTP answer); the rest live here, where every
layer may import them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One failing check of the state store's safety: ``check`` a stable name, ``detail`` in words."""

    check: str
    detail: str


class VerifierError(Exception):
    """Root of the package's exceptions."""

    code = "VERIFIER_ERROR"


class CatalogueError(VerifierError):
    """The catalogue in ``data/`` is broken; ``problems`` names file, entry and field of each."""

    code = "CATALOGUE_INVALID"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(VerifierError):
    """A request the catalogue does not allow, with a message that says what is allowed."""

    code = "USAGE"


class MintRefusedError(UsageError):
    """A token the catalogue does not allow; ``field`` is the request field at fault and
    ``allowed`` what that field may be."""

    code = "MINT_REFUSED"

    def __init__(self, message: str, *, field: str, allowed: tuple[str, ...]) -> None:
        self.field = field
        self.allowed = allowed
        super().__init__(message)


class ReportRequestError(UsageError):
    """A report asked with a ``field`` (``from``, ``to``, ``by``) it cannot take; said in Chinese and English."""

    code = "REPORT_REQUEST"

    def __init__(self, field: str, zh: str, en: str) -> None:
        self.field = field
        self.zh = zh
        self.en = en
        super().__init__(f"{zh} / {en}")


class KeyExistsError(UsageError):
    """``principal`` (a counter id, or the administrator) has an API key already, which stays valid: a new
    one replaces it only when asked to."""

    code = "KEY_EXISTS"

    def __init__(self, principal: str) -> None:
        self.principal = principal
        super().__init__(f"{principal} already has an API key / {principal} 已有密钥")


class KeyStoreError(VerifierError):
    """The issuer's key state is missing or unreadable."""

    code = "KEY_STORE"


class TokenMalformedError(VerifierError):
    """The token is not a well-formed compact JWS of our kind. ``reason`` is the decision's reason code
    (``TOKEN_MALFORMED`` or ``TOKEN_TOO_LARGE``), ``detail`` says what is wrong."""

    code = "TOKEN_MALFORMED"

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class StoreUnavailableError(VerifierError):
    """The state store cannot be reached, did not answer in time, or cannot write now: the scan
    cannot be decided (HTTP 503, never an acceptance)."""

    code = "STORE_UNAVAILABLE"


class StoreUnsafeError(StoreUnavailableError):
    """The store answers but cannot guarantee one-time use now (an evicting memory policy, no persistence,
    no write, too few replicas, or this instance's clock too far from the store's): no scan is decided
    until it can. ``findings`` name each failing check."""

    code = "STORE_UNSAFE"

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        self.findings = findings
        super().__init__("无法保证一次一验 / cannot guarantee one-time use: " + "; ".join(f.detail for f in findings))


class StoreMisconfiguredError(StoreUnavailableError):
    """The store answers but refuses the connection's set-up as the URL asks it (``SELECT`` of a database it
    does not have): a configuration error. ``verifier serve`` refuses to start on it (exit 2); a running
    service answers 503 and names it at ``/readyz`` until the store accepts the set-up."""

    code = "STORE_MISCONFIGURED"


class TrustNotLoadedError(VerifierError):
    """No trust list has been loaded yet, so no signature can be checked: the scan is not decided (HTTP 503),
    never rejected as KEY_UNKNOWN."""

    code = "TRUST_NOT_LOADED"


class RateLimitedError(VerifierError):
    """A counter posts scans faster than ``--counter-rate`` (with ``--counter-burst``), summed over every
    instance: HTTP 429 with ``Retry-After``. ``retry_after`` is in seconds."""

    code = "RATE_LIMITED"

    def __init__(self, counter: str, retry_after: float) -> None:
        self.counter = counter
        self.retry_after = retry_after
        super().__init__(f"counter {counter} is over its scan rate; retry in {retry_after:.1f} s")
