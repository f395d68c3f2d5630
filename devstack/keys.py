"""RSA signing keys (JWK) for the loopback provider."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["make_rsa_jwk", "public_jwk"]


def make_rsa_jwk(kid: str, bits: int = 2048) -> dict[str, Any]:
    """A fresh private RSA JWK (RS256, ``use: sig``) with the given ``kid``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


def public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """The public part of a private RSA JWK."""
    return {k: v for k, v in jwk.items() if k in {"kty", "n", "e", "kid", "alg", "use"}}
