"""What the hub knows about one OIDC provider: discovered endpoints and signing keys."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .tokens import issuers_match

__all__ = ["ENDPOINTS", "ProviderMetadata"]

#: Discovery fields the hub uses, in the order they are checked.
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")


def _is_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parsed = urlparse(value)
    return parsed.scheme in {"http", "https"} and bool(parsed.netloc)


@dataclass
class ProviderMetadata:
    """Endpoints (explicit configuration wins over discovery) and a cached JWKS.

    ``explicit`` maps discovery field names to URLs an admin configured; empty strings
    mean "take it from discovery".
    """

    issuer: str
    explicit: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] | None = None
    fetched_at: float = 0.0
    jwks: dict[str, Any] | None = None
    jwks_fetched_at: float = 0.0

    @property
    def discovered(self) -> bool:
        return self.document is not None

    def fresh(self, ttl: float, now: float | None = None) -> bool:
        """True while the discovery document is younger than ``ttl`` seconds."""
        now = time.monotonic() if now is None else now
        return self.document is not None and now - self.fetched_at < ttl

    def touch(self, now: float | None = None) -> None:
        """Keep using the cached document for another TTL (after a failed refetch)."""
        self.fetched_at = time.monotonic() if now is None else now

    def apply_discovery(self, document: object, now: float | None = None) -> None:
        """Check and store a discovery document.

        Raises:
            ValueError: not a JSON object, a different issuer, or a needed endpoint that is
                neither configured nor a valid URL in the document.
        """
        if not isinstance(document, dict):
            raise ValueError("the discovery document is not a JSON object")
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or not issuers_match(issuer, self.issuer):
            raise ValueError(
                f"discovery says the issuer is {issuer!r}, but the hub is configured "
                f"for {self.issuer!r}"
            )
        for name in ENDPOINTS:
            if not self.explicit.get(name) and not _is_url(document.get(name)):
                raise ValueError(f"the discovery document has no valid {name}")
        self.document = document
        self.touch(now)

    def endpoint(self, name: str) -> str:
        """The URL for ``name``: configured if set, else discovered."""
        configured = self.explicit.get(name)
        if configured:
            return configured
        if self.document is None:
            raise ValueError(f"{name} is not known before discovery")
        return str(self.document[name])

    def set_jwks(self, jwks: object, now: float | None = None) -> None:
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError("the provider's JWKS is not a JSON object with a 'keys' list")
        self.jwks = jwks
        self.jwks_fetched_at = time.monotonic() if now is None else now

    def jwks_age(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return float("inf") if self.jwks is None else now - self.jwks_fetched_at

    def jwks_fresh(self, ttl: float, now: float | None = None) -> bool:
        return self.jwks_age(now) < ttl
