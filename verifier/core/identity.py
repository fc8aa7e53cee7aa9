"""Keyed identities: what the service stores and logs about a licence or a holder is derived with
HMAC-SHA256 from the deployment's secret, so a licence number seen masked on a screen cannot be matched
back to its scans, and nobody without the secret can link one licence's scans across counters. Every
instance loads the same secret (:mod:`verifier.adapters.secret`) and so derives the same identities."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string

# Every licence's keys carry one of these tags, picked by its keyed identity, so a scan's keys share one
# Redis Cluster slot; each tag has its own audit stream, ``<prefix>{<tag>}:audit``.
SHARD_TAGS: tuple[str, ...] = tuple(f"s{n:x}" for n in range(16))


class Identities:
    """Pseudonyms under one secret. Each kind of value has its own domain, so a licence's pseudonym never
    equals a holder's."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the deployment secret must hold at least 32 bytes")
        self._secret = secret

    def _mac(self, domain: str, value: str) -> bytes:
        return hmac.new(self._secret, f"{domain}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest()

    def licence(self, licence_type: str, province: str, licence_no: str) -> str:
        """A licence as revocations, claims and logs name it: 120 bits, URL-safe."""
        return _b64(self._mac("licence", f"{licence_type}|{province}|{licence_no}")[:15])

    def holder(self, sub: str) -> str:
        """A holder (the token's ``sub``) in the audit trail and the usage log."""
        return _b64(self._mac("holder", sub)[:15])


def token_digest(text: str) -> str:
    """120 bits of SHA-256 of a shown token (with the business it is shown for), naming it in cache keys
    without storing it. Unkeyed, unlike a licence's identity, and safely so: a token carries a random
    128-bit ``jti`` and its signature, so its digest cannot be found by trying candidates — and the warm
    path saves the HMAC's cost."""
    return _b64(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:15])


# The first character of a pseudonym is its first byte's top six bits: the top four pick the shard.
_SHARD_OF = {
    char: SHARD_TAGS[n >> 2]
    for n, char in enumerate(string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_")
}


def shard_tag(pseudonym: str) -> str:
    """The shard tag of a pseudonym from :class:`Identities` (its first byte's top four bits pick one of sixteen)."""
    return _SHARD_OF[pseudonym[0]]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")
