"""Logins through the real hub, proxy and IdP with IAMAuthenticator (IRIS IAM shapes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm

from devstack.configs import IAM_HUB_CONFIG
from devstack.idp import make_rsa_jwk
from devstack.login import LoginAttempt, replay
from devstack.stacks import Stack, login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory("iam", IAM_HUB_CONFIG)


def auth_state(stack: Stack, name: str) -> dict[str, Any]:
    r = stack.hub.api("GET", f"/users/{name}")
    assert r.status_code == 200, r.text
    return r.json()["auth_state"]


def test_full_login_with_pkce_nonce_and_groups(stack: Stack) -> None:
    attempt = login(stack, "ada")
    assert attempt.status == 302, attempt.text
    assert attempt.response is not None
    assert attempt.response.headers["location"].startswith("/hub/")

    params = attempt.authorize_params
    assert params["code_challenge_method"] == "S256"
    assert len(params["nonce"]) >= 43
    assert set(params["scope"].split()) == {
        "openid",
        "profile",
        "email",
        "offline_access",
        "wlcg.groups",
    }
    token_requests = [r for r in stack.idp.requests("iam") if r["path"].endswith("/token")]
    verifier = token_requests[-1]["form"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge.decode().rstrip("=") == params["code_challenge"]

    user = stack.hub.api("GET", "/users/aresearcher").json()
    assert sorted(user["groups"]) == ["dune", "dune/production", "iris", "iris/lsst"]
    assert user["admin"] is False
    state = user["auth_state"]
    assert state["identity"] == {
        "issuer": stack.issuer.rstrip("/"),
        "subject": "5c1a7e02-93b4-4c1d-8f0e-6a2b9d3c4e51",
        "subject_claim": "sub",
    }
    assert state["sub"] == "5c1a7e02-93b4-4c1d-8f0e-6a2b9d3c4e51"
    assert state["groups"] == ["dune", "dune/production", "iris", "iris/lsst"]
    assert state["refresh_token"]
    assert state["access_token"]
    assert state["expires_at"] > time.time()
    assert state["oauth_user"]["wlcg.groups"] == [
        "/iris",
        "/iris/lsst",
        "/dune",
        "/dune/production",
    ]
    assert "nonce" not in state["oauth_user"]


def test_logged_in_session_reaches_the_hub_home(stack: Stack) -> None:
    attempt = login(stack, "bob")
    assert attempt.status == 302
    home = attempt.client.get(f"{stack.hub.url}/hub/home")
    assert home.status_code == 200
    assert "bbuilder" in home.text


def test_admin_from_admin_groups(stack: Stack) -> None:
    assert login(stack, "carol").status == 302
    assert stack.hub.api("GET", "/users/cadmin").json()["admin"] is True


def test_user_outside_allowed_groups_is_refused(stack: Stack) -> None:
    attempt = login(stack, "eve")
    assert attempt.status == 403
    assert "not currently authorized" in attempt.text or "not a member" in attempt.text
    assert stack.hub.api("GET", "/users/eoutsider").status_code == 404


def test_access_denied_at_the_idp_gives_403_saying_so(stack: Stack) -> None:
    attempt = login(stack, "ada", deny=True)
    assert attempt.status == 403
    assert "access was denied" in attempt.text


def test_replayed_callback_is_refused(stack: Stack) -> None:
    attempt = login(stack, "bob")
    assert attempt.status == 302
    again = replay(attempt)
    assert again.status_code == 400
    assert "already been used" in again.text


# --- forged ID tokens ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _forge(stack: Stack, mode: str, nonce: str) -> str:
    """A forged ID token for ada, made with keys the tests control."""
    claims = stack.id_claims("ada", nonce)
    if mode == "valid":
        return stack.sign(claims)
    if mode == "tampered":
        header, _, signature = stack.sign(claims).split(".")
        tampered = dict(claims, **{"wlcg.groups": ["/iris", "/iris/admins"]})
        return f"{header}.{_b64(json.dumps(tampered).encode())}.{signature}"
    if mode == "wrong-signature":
        return stack.sign(claims, jwk=make_rsa_jwk("x"), kid=stack.keys["iam"]["kid"])
    if mode == "unknown-kid":
        return stack.sign(claims, jwk=make_rsa_jwk("attacker-key"))
    if mode in {"alg-none", "hs256-public-key"}:
        alg = "none" if mode == "alg-none" else "HS256"
        header = _b64(json.dumps({"alg": alg, "kid": stack.keys["iam"]["kid"]}).encode())
        payload = _b64(json.dumps(claims).encode())
        if alg == "none":
            return f"{header}.{payload}."
        public = RSAAlgorithm.from_jwk(json.dumps(stack.keys["iam"])).public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"
    overrides = {
        "wrong-iss": {"iss": "https://evil.example/"},
        "wrong-aud": {"aud": "another-client", "azp": None},
        "expired": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        "replayed-nonce": {"nonce": "nonce-of-an-earlier-login"},
        "sub-mismatch": {"sub": "0f0f0f0f-0000-4000-8000-000000000000"},
    }[mode]
    return stack.sign(stack.id_claims("ada", nonce, **overrides))


def test_forged_token_infrastructure_accepts_a_correctly_signed_token(stack: Stack) -> None:
    """Control case: the tests' own signing path produces tokens the hub accepts."""

    def queue(attempt: LoginAttempt) -> None:
        stack.idp.next_id_token("iam", _forge(stack, "valid", attempt.authorize_params["nonce"]))

    assert login(stack, "ada", before_callback=queue).status == 302


@pytest.mark.parametrize(
    ("mode", "logged_reason"),
    [
        ("tampered", "signature does not verify"),
        ("wrong-signature", "signature does not verify"),
        ("unknown-kid", "no key with kid 'attacker-key'"),
        ("alg-none", "'none' is not in the allow-list"),
        ("hs256-public-key", "'HS256' is not in the allow-list"),
        ("wrong-iss", "issuer 'https://evil.example/'"),
        ("wrong-aud", "audience"),
        ("expired", "expired"),
        ("replayed-nonce", "nonce does not match"),
        ("sub-mismatch", "userinfo sub"),
    ],
)
def test_forged_id_tokens_are_refused(stack: Stack, mode: str, logged_reason: str) -> None:
    def queue(attempt: LoginAttempt) -> None:
        stack.idp.next_id_token("iam", _forge(stack, mode, attempt.authorize_params["nonce"]))

    log_before = len(stack.hub.log_text())
    attempt = login(stack, "ada", before_callback=queue)
    assert attempt.status == 403, attempt.text
    assert "not signed in" in attempt.text
    assert logged_reason in stack.hub.log_text()[log_before:]


def _jwks_fetches(stack: Stack) -> int:
    return sum(1 for r in stack.idp.requests("iam") if r["path"] == "/jwk")


def test_key_rotation_is_followed_by_refetching_the_jwks(stack: Stack) -> None:
    assert login(stack, "bob").status == 302
    cached = _jwks_fetches(stack)
    assert login(stack, "bob").status == 302
    assert _jwks_fetches(stack) == cached, "the JWKS should be cached between logins"
    stack.idp.rotate_keys("iam", make_rsa_jwk("iam-key-2"))
    try:
        assert login(stack, "bob").status == 302
        assert _jwks_fetches(stack) == cached + 1, "an unknown kid must refetch the JWKS once"
    finally:
        stack.idp.rotate_keys("iam", stack.keys["iam"])


# --- provider outages --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "status", "delay_ms"),
    [("token", 502, 0), ("token", 503, 0), ("userinfo", 500, 0), ("token", 0, 5000)],
)
def test_provider_failure_gives_503_with_retry_hint(
    stack: Stack, endpoint: str, status: int, delay_ms: int
) -> None:
    stack.idp.fail("iam", endpoint, status=status, delay_ms=delay_ms)
    attempt = login(stack, "bob")
    assert attempt.status == 503, attempt.text
    assert "try again" in attempt.text
    assert attempt.response is not None
    assert attempt.response.headers.get("retry-after")
    # the hub keeps running and the next login works
    assert login(stack, "bob").status == 302


async def test_discovery_outage_without_a_cached_copy_gives_503(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tornado import web

    from iris_jupyterhub.auth import IAMAuthenticator

    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", stack.hub.crypt_key)
    authenticator = IAMAuthenticator(issuer=stack.issuer, client_id="hub", http_timeout=3)
    stack.idp.fail("iam", "discovery", status=502)
    with pytest.raises(web.HTTPError) as info:
        await authenticator.discover()
    assert info.value.status_code == 503
    await authenticator.discover()  # the provider is back: discovery works
    assert authenticator.token_url == f"{stack.idp.base_url}/token"


async def test_discovery_outage_with_a_cached_copy_keeps_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iris_jupyterhub.auth import IAMAuthenticator

    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", stack.hub.crypt_key)
    authenticator = IAMAuthenticator(issuer=stack.issuer, client_id="hub", discovery_ttl=0)
    await authenticator.discover()
    stack.idp.fail("iam", "discovery", status=502)
    await authenticator.discover()  # expired and the refetch fails: the cached copy is kept
    assert authenticator.token_url == f"{stack.idp.base_url}/token"
    assert any(r["status"] == 502 for r in stack.idp.requests("iam"))


# --- hostile and large claims ------------------------------------------------------------


def test_ten_thousand_groups_work(stack: Stack) -> None:
    user = stack.user("bob")
    many = [f"iris/project{i:05d}" for i in range(10_000)]
    user["userinfo"]["groups"] = ["iris", *many]
    stack.idp.upsert_user("iam", user)
    # The first login with 10,000 groups assigns 10,000 GIDs and takes ~25 s on 2 idle cores
    # (issue 15 measures it); the client waits long enough for a loaded CI machine too.
    with httpx.Client(timeout=180) as client:
        attempt = login(stack, "bob", client=client)
        assert attempt.status == 302, attempt.text
        state = auth_state(stack, "bbuilder")
        assert len(state["groups"]) == 10_001
        assert "iris/project09999" in state["groups"]
        # Back to bob's own groups, waited for here: the next login drops 10,000 hub group
        # memberships and GID memberships, which blocks the hub for a while on a loaded
        # machine; the tests after this one must not pay for it inside their 30 s timeout.
        stack.idp.upsert_user("iam", stack.user("bob"))
    with httpx.Client(timeout=180) as client:
        assert login(stack, "bob", client=client).status == 302
    assert len(auth_state(stack, "bbuilder")["groups"]) < 10


def test_hostile_group_values_never_reach_group_names(stack: Stack) -> None:
    user = stack.user("bob")
    hostile = [
        "..",
        "/",
        "iris/../admin",
        "iris/lsst\n",
        "$(id)",
        "\u202eevil",
        "iris/",
        "a" * 5000,
        None,
        42,
        {"nested": "x"},
        "iris/ok",
    ]
    user["userinfo"]["groups"] = ["iris", *hostile]
    user["id_token"]["wlcg.groups"] = ["/iris", "/../root", "//", "/iris/\u0000x"]
    stack.idp.upsert_user("iam", user)
    assert login(stack, "bob").status == 302
    groups = stack.hub.api("GET", "/users/bbuilder").json()["groups"]
    assert sorted(groups) == ["iris", "iris/ok"]
    assert "Ignoring malformed group claim" in stack.hub.log_text()


@pytest.mark.parametrize("bad_name", ["../../root", "a;rm -rf /", "admin\u0000x", "", "..", 42])
def test_hostile_usernames_are_refused(stack: Stack, bad_name: object) -> None:
    user = stack.user("bob")
    user["userinfo"]["preferred_username"] = bad_name
    user["id_token"]["preferred_username"] = bad_name
    stack.idp.upsert_user("iam", user)
    attempt = login(stack, "bob")
    assert attempt.status == 403, attempt.text
    assert "no user name this hub can use" in attempt.text
    names = [u["name"] for u in stack.hub.api("GET", "/users").json()]
    assert all("/" not in n and "\x00" not in n and ";" not in n for n in names)


def test_unicode_username_is_made_safe(stack: Stack) -> None:
    user = stack.user("bob")
    user["userinfo"]["preferred_username"] = "Ünïcødé.Üser"
    stack.idp.upsert_user("iam", user)
    assert login(stack, "bob").status == 302
    assert stack.hub.api("GET", "/users/unicode.user").status_code == 200


# --- refresh ---------------------------------------------------------------------------


def _user_token(stack: Stack, name: str) -> str:
    r = stack.hub.api("POST", f"/users/{name}/tokens", json={"note": "test"})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_refresh_renews_tokens_and_follows_idp_groups(stack: Stack) -> None:
    assert login(stack, "ada").status == 302
    before = auth_state(stack, "aresearcher")
    user = stack.user("ada")
    user["userinfo"]["groups"] = ["iris", "iris/lsst", "iris/new-project"]
    user["id_token"]["wlcg.groups"] = ["/iris", "/iris/lsst", "/iris/new-project"]
    stack.idp.upsert_user("iam", user)

    token = _user_token(stack, "aresearcher")
    r = httpx.post(
        f"{stack.hub.url}/hub/api/users/aresearcher/server",
        headers={"Authorization": f"token {token}"},
        timeout=90,
    )
    assert r.status_code in (201, 202), r.text
    after = auth_state(stack, "aresearcher")
    assert after["access_token"] != before["access_token"]
    assert after["groups"] == ["iris", "iris/lsst", "iris/new-project"]
    assert sorted(stack.hub.api("GET", "/users/aresearcher").json()["groups"]) == [
        "iris",
        "iris/lsst",
        "iris/new-project",
    ]
    grants = [r["form"].get("grant_type") for r in stack.idp.requests("iam") if r["form"]]
    assert "refresh_token" in grants
    stack.hub.api("DELETE", "/users/aresearcher/server")


def test_user_removed_from_vo_cannot_spawn(stack: Stack) -> None:
    assert login(stack, "bob").status == 302
    user = stack.user("bob")
    user["userinfo"]["groups"] = []
    user["id_token"]["wlcg.groups"] = []
    stack.idp.upsert_user("iam", user)
    token = _user_token(stack, "bbuilder")
    r = httpx.post(
        f"{stack.hub.url}/hub/api/users/bbuilder/server",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert r.status_code == 403, r.text
    assert "no longer a member" in r.json()["message"]
    assert stack.hub.api("GET", "/users/bbuilder").json()["servers"] == {}
