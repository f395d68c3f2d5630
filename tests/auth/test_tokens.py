"""ID token verification against keys the tests control (pure, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from iris_jupyterhub.auth.tokens import (
    IDTokenError,
    UnknownSigningKeyError,
    issuers_match,
    nonce_for_state,
    validate_algorithms,
    verify_id_token,
)

ISSUER = "https://iris-iam.stfc.ac.uk/"
CLIENT = "3b8f6d2e-1c4a-4f7b-9e0d-2a5c8b7f6e13"


def _rsa(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg="RS256")
    return key, jwk


KEY, PUBLIC_JWK = _rsa("k1")
OTHER_KEY, OTHER_JWK = _rsa("k2")
JWKS = {"keys": [PUBLIC_JWK]}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "5c1a7e02-93b4-4c1d-8f0e-6a2b9d3c4e51",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": "n-1",
        "wlcg.groups": ["/iris"],
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(
    claims: dict[str, Any], key: Any = KEY, kid: str | None = "k1", alg: str = "RS256"
) -> str:
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _verify(token: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("nonce", "n-1")
    return verify_id_token(token, JWKS, issuer=ISSUER, client_id=CLIENT, **kwargs)


def test_valid_token_returns_claims() -> None:
    claims = _verify(_sign(_claims()))
    assert claims["sub"] == "5c1a7e02-93b4-4c1d-8f0e-6a2b9d3c4e51"
    assert claims["wlcg.groups"] == ["/iris"]


def test_issuer_trailing_slash_is_ignored_both_ways() -> None:
    assert _verify(_sign(_claims(iss=ISSUER.rstrip("/"))))["sub"]
    assert issuers_match("https://a/realms/egi/", "https://a/realms/egi")
    assert not issuers_match("https://a/realms/egi", "https://a/realms/egi2")


def test_payload_altered_after_signing_is_refused() -> None:
    header, _payload, signature = _sign(_claims()).split(".")
    forged = _b64(json.dumps(_claims(sub="someone-else")).encode())
    with pytest.raises(IDTokenError, match="signature"):
        _verify(f"{header}.{forged}.{signature}")


def test_wrong_key_with_known_kid_is_refused() -> None:
    with pytest.raises(IDTokenError, match="signature"):
        _verify(_sign(_claims(), key=OTHER_KEY, kid="k1"))


def test_unknown_kid_asks_for_a_jwks_refetch() -> None:
    with pytest.raises(UnknownSigningKeyError) as info:
        _verify(_sign(_claims(), key=OTHER_KEY, kid="k2"))
    assert info.value.kid == "k2"
    rotated = {"keys": [PUBLIC_JWK, OTHER_JWK]}
    token = _sign(_claims(), key=OTHER_KEY, kid="k2")
    assert verify_id_token(token, rotated, issuer=ISSUER, client_id=CLIENT, nonce="n-1")


def test_alg_none_is_refused() -> None:
    header = _b64(json.dumps({"alg": "none", "kid": "k1"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    with pytest.raises(IDTokenError, match="allow-list"):
        _verify(f"{header}.{payload}.")


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(IDTokenError, match="allow-list"):
        _verify(f"{header}.{payload}.{_b64(signature)}")
    with pytest.raises(IDTokenError, match="allow-list"):
        _verify(f"{header}.{payload}.{_b64(signature)}", algorithms=["RS256", "HS256"][:1])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://evil.example/"}, "issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": [CLIENT, "other"]}, "azp"),
        ({"azp": "other"}, "azp"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iat": int(time.time()) + 3600}, "not valid yet"),
        ({"nonce": "n-0"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": ""}, "subject"),
        ({"sub": "x" * 300}, "subject"),
    ],
)
def test_claim_checks(overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(IDTokenError, match=reason):
        _verify(_sign(_claims(**overrides)))


def test_missing_required_claim_is_refused() -> None:
    with pytest.raises(IDTokenError, match="iat"):
        _verify(_sign(_claims(iat=None)))


def test_several_audiences_with_matching_azp_are_accepted() -> None:
    assert _verify(_sign(_claims(aud=[CLIENT, "rucio"], azp=CLIENT)))["azp"] == CLIENT


def test_leeway_tolerates_small_skew() -> None:
    token = _sign(_claims(exp=int(time.time()) - 30))
    assert _verify(token, leeway=60)
    with pytest.raises(IDTokenError, match="expired"):
        _verify(token, leeway=0)


def test_refresh_tokens_need_no_nonce() -> None:
    assert _verify(_sign(_claims(nonce=None)), nonce=None)


def test_key_type_must_fit_the_algorithm() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = _sign(_claims(), key=ec_key, kid="k1", alg="ES256")
    with pytest.raises(IDTokenError):
        _verify(token)


def test_ec_keys_work() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(ec_key.public_key()))
    jwk.update(kid="e1", use="sig")
    token = _sign(_claims(), key=ec_key, kid="e1", alg="ES256")
    assert verify_id_token(token, {"keys": [jwk]}, issuer=ISSUER, client_id=CLIENT, nonce="n-1")


def test_garbage_is_refused() -> None:
    for token in ["", "abc", "a.b.c", "e30.e30.", "x" * 10000]:
        with pytest.raises(IDTokenError):
            _verify(token)


def test_algorithm_allow_list_validation() -> None:
    assert validate_algorithms(["RS256", "ES256"]) == ["RS256", "ES256"]
    for bad in (["none"], ["HS256"], [], ["RS999"]):
        with pytest.raises(ValueError):  # noqa: PT011  (message checked in oidc tests)
            validate_algorithms(bad)


def test_nonce_is_bound_to_state_and_secret() -> None:
    a = nonce_for_state(b"secret", "state-1")
    assert a == nonce_for_state(b"secret", "state-1")
    assert a != nonce_for_state(b"secret", "state-2")
    assert a != nonce_for_state(b"other", "state-1")
    assert len(a) >= 43
