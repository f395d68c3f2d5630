"""ID token verification, as pure functions over a token, a JWKS and the expected values.

The checks follow OpenID Connect Core 1.0 section 3.1.3.7:

* the signature is verified against the provider's JWKS, choosing the key by ``kid``;
* the algorithm comes from an allow-list of asymmetric algorithms, so ``alg: none`` and
  HMAC tokens "signed" with the provider's *public* key are refused before any key is used;
* ``iss`` must name the configured issuer (a trailing ``/`` is ignored on both sides,
  because INDIGO IAM adds one to its discovery document whatever its configuration says);
* ``aud`` must contain the client id, and ``azp``, when present or when there are several
  audiences, must be the client id;
* ``exp``, ``iat`` (and ``nbf`` when present) are checked with a small leeway;
* ``nonce`` must equal the value the hub sent with this login.

Nothing here performs I/O: :class:`~iris_jupyterhub.auth.OIDCAuthenticator` fetches the
JWKS and calls :func:`verify_id_token`, refetching the JWKS once when it gets
:class:`UnknownSigningKeyError` (the provider rotated its keys).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Mapping
from typing import Any

import jwt

__all__ = [
    "DEFAULT_ID_TOKEN_ALGORITHMS",
    "IDTokenError",
    "UnknownSigningKeyError",
    "issuers_match",
    "nonce_for_state",
    "normalize_issuer",
    "validate_algorithms",
    "verify_id_token",
]

#: Asymmetric JWS algorithms accepted by default. HMAC (``HS*``) and ``none`` are never
#: accepted: an ID token from a public provider is always signed with a private key.
DEFAULT_ID_TOKEN_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)

#: Longest ``sub`` accepted (OIDC Core: at most 255 ASCII characters).
MAX_SUBJECT_LENGTH = 255


class IDTokenError(Exception):
    """The ID token was refused; ``reason`` says why, for the hub log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSigningKeyError(IDTokenError):
    """No key in the JWKS matches the token's ``kid``: refetch the JWKS and try again."""

    def __init__(self, kid: str | None) -> None:
        super().__init__(f"no key with kid {kid!r} in the provider's JWKS")
        self.kid = kid


def normalize_issuer(issuer: str) -> str:
    """Return ``issuer`` without trailing slashes, for comparison only."""
    return issuer.rstrip("/")


def issuers_match(a: str, b: str) -> bool:
    """Compare two issuer identifiers, ignoring one side's trailing ``/``."""
    return normalize_issuer(a) == normalize_issuer(b)


def validate_algorithms(algorithms: Collection[str]) -> list[str]:
    """Check an algorithm allow-list from configuration; return it as a list.

    Raises:
        ValueError: for an empty list, ``none``, any ``HS*`` algorithm, or a name that
            PyJWT does not implement.
    """
    if not algorithms:
        raise ValueError("the list is empty, so no ID token could ever be accepted")
    known = jwt.algorithms.get_default_algorithms()
    for alg in algorithms:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ValueError(
                f"{alg!r} is not allowed: ID tokens must be signed with the provider's "
                "private key (RS*, PS*, ES* or EdDSA)"
            )
        if alg not in known:
            raise ValueError(f"{alg!r} is not a JWS algorithm this installation supports")
    return list(algorithms)


def nonce_for_state(secret: bytes, state: str) -> str:
    """Derive the OIDC ``nonce`` for one login from the hub's cookie secret and its ``state``.

    The ``state`` is random per login and bound to the browser by oauthenticator's signed
    state cookie, so an HMAC of it is unpredictable to anyone without the hub's secret,
    unique per login, and the same on every hub replica: no extra cookie is needed.
    """
    digest = hmac.new(secret, b"iris-oidc-nonce\0" + state.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _select_key(jwks: Mapping[str, Any], kid: str | None, alg: str) -> jwt.PyJWK:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise IDTokenError("the provider's JWKS has no 'keys' list")
    candidates = [
        k
        for k in keys
        if isinstance(k, dict) and k.get("use", "sig") == "sig" and k.get("alg", alg) == alg
    ]
    if kid is not None:
        candidates = [k for k in candidates if k.get("kid") == kid]
        if not candidates:
            raise UnknownSigningKeyError(kid)
    elif len(candidates) != 1:
        # Without a kid only an unambiguous single key may be used.
        raise UnknownSigningKeyError(None)
    try:
        return jwt.PyJWK(candidates[0], algorithm=alg)
    except (jwt.PyJWKError, jwt.InvalidKeyError) as e:
        raise IDTokenError(f"key {kid!r} cannot verify {alg}: {e}") from e


def verify_id_token(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    algorithms: Collection[str] = DEFAULT_ID_TOKEN_ALGORITHMS,
    leeway: float = 60,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Verify an ID token and return its claims.

    Args:
        token: the compact JWS from the token endpoint response.
        jwks: the provider's JSON Web Key Set (``{"keys": [...]}``).
        issuer: the configured issuer identifier.
        client_id: this hub's client id at the provider.
        algorithms: accepted JWS algorithms (see :func:`validate_algorithms`).
        leeway: seconds of clock skew tolerated for ``exp``, ``iat`` and ``nbf``.
        nonce: the nonce sent with this login, or ``None`` where none is expected
            (tokens from a refresh grant).

    Raises:
        UnknownSigningKeyError: no key matches; refetch the JWKS once and retry.
        IDTokenError: any other reason to refuse the token.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as e:
        raise IDTokenError(f"not a well-formed JWT: {e}") from e
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms:
        raise IDTokenError(f"signing algorithm {alg!r} is not in the allow-list")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IDTokenError("the 'kid' header is not a string")
    key = _select_key(jwks, kid, alg)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[alg],
            audience=client_id,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidSignatureError as e:
        raise IDTokenError("signature does not verify with the provider's key") from e
    except jwt.ExpiredSignatureError as e:
        raise IDTokenError("the token has expired") from e
    except jwt.ImmatureSignatureError as e:
        raise IDTokenError("the token is not valid yet (iat/nbf in the future)") from e
    except jwt.InvalidAudienceError as e:
        raise IDTokenError(f"audience does not contain this hub's client id: {e}") from e
    except jwt.InvalidTokenError as e:
        raise IDTokenError(f"invalid token: {e}") from e

    _check_oidc_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce)
    return claims


def _check_oidc_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str | None
) -> None:
    """The OIDC checks PyJWT does not do: issuer, azp, sub and nonce."""
    iss = claims["iss"]
    if not isinstance(iss, str) or not issuers_match(iss, issuer):
        raise IDTokenError(f"issuer {iss!r} is not the configured issuer {issuer!r}")
    aud = claims["aud"]
    azp = claims.get("azp")
    if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (
        azp is not None and azp != client_id
    ):
        raise IDTokenError(f"authorized party (azp) {azp!r} is not this hub's client id")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUBJECT_LENGTH:
        raise IDTokenError("the subject (sub) is missing, not a string or too long")
    if nonce is not None:
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce, nonce):
            raise IDTokenError("nonce does not match this login (replayed or foreign token)")
