"""The loopback IdP (tests/idp/server.mjs) behaves like IRIS IAM and EGI Check-in over HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest

from devstack.idp import IdPProcess, make_rsa_jwk

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIRECT_URI = "http://127.0.0.1:8000/hub/oauth_callback"
SECRET = "s3cret"
IAM_SCOPE = "openid profile email offline_access wlcg.groups"
CHECKIN_SCOPE = "openid profile email voperson_id eduperson_entitlement offline_access"
IAM_KEY = make_rsa_jwk("iam-test-key-1")
CHECKIN_ENTITLEMENTS = [
    "urn:mace:egi.eu:group:vo.iris.ac.uk:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.iris.ac.uk:role=vm_operator#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.iris.ac.uk:lsst:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.iris.ac.uk:lsst:desc:role=manager#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.access.egi.eu:role=member#aai.egi.eu",
    "urn:mace:egi.eu:res:rcauth:cap:issue",
    "urn:mace:egi.eu:aai.egi.eu:member@vo.access.egi.eu",
    "urn:geant:eduteams.org:service:eduteams:group:iris-training:role=member#eduteams.org",
]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdPProcess]:
    clients: list[dict[str, Any]] = [
        {
            "provider": provider,
            "client_id": "hub",
            "client_secret": SECRET,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
        }
        for provider in ("iam", "checkin")
    ]
    clients.append(
        {
            "provider": "iam",
            "client_id": "hub-basic",
            "client_secret": SECRET,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
        }
    )
    process = IdPProcess(
        REPO_ROOT,
        tmp_path_factory.mktemp("idp"),
        clients=clients,
        provider_jwks={"iam": {"keys": [IAM_KEY]}},
    )
    process.start()
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(autouse=True)
def _reset(idp: IdPProcess) -> None:
    idp.reset()


def discovery(idp: IdPProcess, provider: str) -> dict[str, Any]:
    response = httpx.get(idp.discovery_url(provider))
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Flow:
    """One browser-like authorization attempt against a provider."""

    idp: IdPProcess
    provider: str
    client_id: str = "hub"
    scope: str = IAM_SCOPE

    def __post_init__(self) -> None:
        self.browser = httpx.Client(follow_redirects=False, timeout=10)
        self.meta = discovery(self.idp, self.provider)
        self.verifier, self.challenge = pkce_pair()
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)

    def authorize(self, **overrides: str | None) -> httpx.Response:
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **overrides,
        }
        sent = {k: v for k, v in params.items() if v is not None}
        return self.browser.get(self.meta["authorization_endpoint"], params=sent)

    def login_page(self) -> tuple[str, str]:
        """Authorize and follow to the login form; returns (page URL, HTML)."""
        response = self.authorize()
        assert response.status_code in (302, 303), response.text
        url = urljoin(str(response.url), response.headers["location"])
        page = self.browser.get(url)
        assert page.status_code == 200
        return url, page.text

    def submit(
        self, html: str, page_url: str, form_id: str, data: dict[str, str]
    ) -> httpx.Response:
        form = re.search(rf'<form method="post" action="([^"]+)" id="{form_id}">', html)
        assert form, html
        return self.browser.post(urljoin(page_url, form.group(1)), data=data)

    def follow_to_client(self, response: httpx.Response) -> dict[str, str]:
        """Follow IdP redirects until the redirect_uri; return its query parameters."""
        for _ in range(5):
            assert response.status_code in (302, 303), response.text
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(REDIRECT_URI):
                return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
            response = self.browser.get(location)
        raise AssertionError("too many redirects")

    def login(self, login: str, password: str) -> dict[str, str]:
        url, html = self.login_page()
        response = self.submit(html, url, "login-form", {"login": login, "password": password})
        return self.follow_to_client(response)

    def exchange(self, code: str) -> httpx.Response:
        return httpx.post(
            self.meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": self.verifier,
                "client_id": self.client_id,
                "client_secret": SECRET,
            },
        )

    def tokens(self, login: str, password: str) -> dict[str, Any]:
        params = self.login(login, password)
        assert params["state"] == self.state
        response = self.exchange(params["code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def verify_id_token(
    idp: IdPProcess, provider: str, token: str, audience: str = "hub"
) -> dict[str, Any]:
    meta = discovery(idp, provider)
    jwks = jwt.PyJWKSet.from_dict(httpx.get(meta["jwks_uri"]).json())
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    key = jwks[header["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=idp.issuer(provider),
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return claims


def userinfo(idp: IdPProcess, provider: str, access_token: str) -> dict[str, Any]:
    response = httpx.get(
        discovery(idp, provider)["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- discovery ------------------------------------------------------------------------------------


def refresh(meta: dict[str, Any], refresh_token: str) -> httpx.Response:
    """A refresh-token grant at the token endpoint as the hub's client."""
    return httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "hub",
            "client_secret": SECRET,
        },
    )


def test_iam_discovery_keeps_trailing_slash_issuer(idp: IdPProcess) -> None:
    response = httpx.get(f"{idp.base_url}/.well-known/openid-configuration")
    doc = response.json()
    assert doc["issuer"] == f"{idp.base_url}/"
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert doc[key].startswith(f"{idp.base_url}/"), key
    assert "end_session_endpoint" not in doc
    assert {"openid", "profile", "email", "offline_access", "wlcg.groups"} <= set(
        doc["scopes_supported"]
    )
    assert {"sub", "wlcg.groups", "groups", "preferred_username"} <= set(doc["claims_supported"])
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_post", "client_secret_basic"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )


def test_checkin_discovery_under_realm_path(idp: IdPProcess) -> None:
    doc = httpx.get(f"{idp.base_url}/auth/realms/egi/.well-known/openid-configuration").json()
    issuer = f"{idp.base_url}/auth/realms/egi"
    assert doc["issuer"] == issuer
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert doc[key].startswith(f"{issuer}/protocol/openid-connect/"), key
    assert doc["end_session_endpoint"].startswith(issuer)
    assert {"voperson_id", "eduperson_entitlement", "offline_access"} <= set(
        doc["scopes_supported"]
    )
    assert "eduperson_entitlement" in doc["claims_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
    # the IAM provider at the root does not swallow the realm's JWKS
    jwks = httpx.get(doc["jwks_uri"]).json()
    assert IAM_KEY["kid"] not in {k["kid"] for k in jwks["keys"]}


# -- code flow ------------------------------------------------------------------------------------


def test_iam_code_flow_with_pkce_and_nonce(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    params = flow.login("ada", "ada-pass")
    assert params["state"] == flow.state
    assert params["iss"] == idp.issuer("iam")
    tokens = flow.exchange(params["code"]).json()
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]
    claims = verify_id_token(idp, "iam", tokens["id_token"])
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == IAM_KEY["kid"]
    assert claims["iss"] == f"{idp.base_url}/"
    assert claims["nonce"] == flow.nonce
    assert claims["sub"] == "5c1a7e02-93b4-4c1d-8f0e-6a2b9d3c4e51"
    assert claims["wlcg.groups"] == ["/iris", "/iris/lsst", "/dune", "/dune/production"]
    assert claims["wlcg.ver"] == "1.0"
    assert "groups" not in claims
    info = userinfo(idp, "iam", tokens["access_token"])
    assert info["sub"] == claims["sub"]
    assert info["groups"] == ["iris", "iris/lsst", "dune", "dune/production"]
    assert info["preferred_username"] == "aresearcher"
    assert info["organisation_name"] == "iris"
    # the token request as the IdP saw it: PKCE verifier and client_secret_post credentials
    token_path = urlsplit(flow.meta["token_endpoint"]).path
    [token_request] = [r for r in idp.requests("iam") if r["endpoint"] == "token"]
    assert token_request["path"] == token_path
    assert token_request["form"]["code_verifier"] == flow.verifier
    assert token_request["form"]["client_secret"] == SECRET
    assert token_request["status"] == 200


def test_checkin_entitlements_only_in_userinfo(idp: IdPProcess) -> None:
    flow = Flow(idp, "checkin", scope=CHECKIN_SCOPE)
    tokens = flow.tokens("ada", "ada-pass")
    claims = verify_id_token(idp, "checkin", tokens["id_token"])
    sub = "8e2f0c6a1d9b4e7f3a5c2b8d0e6f4a1c9b7d5e3f2a0c8e6b4d2f0a9c7e5b3d1f@egi.eu"
    assert claims["iss"] == f"{idp.base_url}/auth/realms/egi"
    assert claims["nonce"] == flow.nonce
    assert claims["sub"] == sub
    assert claims["voperson_id"] == sub
    assert claims["preferred_username"] == "ada"
    assert "eduperson_entitlement" not in claims
    info = userinfo(idp, "checkin", tokens["access_token"])
    assert info["eduperson_entitlement"] == CHECKIN_ENTITLEMENTS
    assert info["voperson_id"] == sub


def test_checkin_usernames_are_not_unique(idp: IdPProcess) -> None:
    first = Flow(idp, "checkin", scope=CHECKIN_SCOPE).tokens("ada", "ada-pass")
    second = Flow(idp, "checkin", scope=CHECKIN_SCOPE).tokens("ada2", "ada2-pass")
    a = verify_id_token(idp, "checkin", first["id_token"])
    b = verify_id_token(idp, "checkin", second["id_token"])
    assert a["preferred_username"] == b["preferred_username"] == "ada"
    assert a["sub"] != b["sub"]
    assert re.fullmatch(r"[0-9a-f]{64}@egi\.eu", b["sub"])


def test_scopes_filter_claims(idp: IdPProcess) -> None:
    tokens = Flow(idp, "iam", scope="openid").tokens("ada", "ada-pass")
    claims = verify_id_token(idp, "iam", tokens["id_token"])
    assert "wlcg.groups" not in claims
    assert "refresh_token" not in tokens
    assert set(userinfo(idp, "iam", tokens["access_token"])) == {"sub"}


def test_authorization_without_pkce_is_rejected(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    params = flow.follow_to_client(response)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    plain = flow.authorize(code_challenge="x" * 43, code_challenge_method="plain")
    assert flow.follow_to_client(plain)["error"] == "invalid_request"


def test_wrong_code_verifier_is_rejected(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    params = flow.login("bob", "bob-pass")
    flow.verifier = pkce_pair()[0]
    response = flow.exchange(params["code"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_client_secret_basic(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam", client_id="hub-basic")
    params = flow.login("bob", "bob-pass")
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": flow.verifier,
    }
    response = httpx.post(flow.meta["token_endpoint"], data=data, auth=("hub-basic", SECRET))
    assert response.status_code == 200, response.text
    claims = verify_id_token(idp, "iam", response.json()["id_token"], audience="hub-basic")
    assert claims["aud"] == "hub-basic"
    token_path = urlsplit(flow.meta["token_endpoint"]).path
    [token_request] = [r for r in idp.requests("iam") if r["path"] == token_path]
    assert token_request["authorization"].startswith("Basic ")
    # the client is registered for client_secret_basic: credentials in the body are refused
    second = Flow(idp, "iam", client_id="hub-basic")
    refused = second.exchange(second.login("bob", "bob-pass")["code"])
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert claims["wlcg.groups"] == ["/iris"]


# -- refresh --------------------------------------------------------------------------------------


def test_refresh_grant_returns_new_tokens_and_live_claims(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    tokens = flow.tokens("bob", "bob-pass")
    bob = {
        "login": "bob",
        "password": "bob-pass",
        "sub": "9b2d4f61-0c7e-4a35-b8d1-3e6f2a9c7b40",
        "id_token": {"wlcg.ver": "1.0", "wlcg.groups": ["/iris", "/iris/lsst"]},
        "userinfo": {"preferred_username": "bbuilder", "groups": ["iris", "iris/lsst"]},
    }
    idp.upsert_user("iam", bob)
    response = refresh(flow.meta, tokens["refresh_token"])
    assert response.status_code == 200, response.text
    refreshed = response.json()
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["refresh_token"]
    assert refreshed["id_token"] != tokens["id_token"]
    claims = verify_id_token(idp, "iam", refreshed["id_token"])
    assert claims["sub"] == bob["sub"]
    assert claims["wlcg.groups"] == ["/iris", "/iris/lsst"]
    assert userinfo(idp, "iam", refreshed["access_token"])["groups"] == ["iris", "iris/lsst"]


# -- login page -----------------------------------------------------------------------------------


def test_wrong_password_shows_invalid_login(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    url, html = flow.login_page()
    assert '<label for="login">' in html
    assert '<label for="password">' in html
    response = flow.submit(html, url, "login-form", {"login": "ada", "password": "nope"})
    assert response.status_code == 200
    assert "Invalid login" in response.text
    # the same interaction still accepts the right password
    retry = flow.submit(response.text, url, "login-form", {"login": "ada", "password": "ada-pass"})
    assert "code" in flow.follow_to_client(retry)


def test_deny_returns_access_denied(idp: IdPProcess) -> None:
    flow = Flow(idp, "checkin", scope=CHECKIN_SCOPE)
    url, html = flow.login_page()
    assert "Deny" in html
    params = flow.follow_to_client(flow.submit(html, url, "abort-form", {}))
    assert params["error"] == "access_denied"
    assert params["state"] == flow.state


def test_provider_sessions_do_not_clash(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    flow.login("ada", "ada-pass")
    names = {cookie.name for cookie in flow.browser.cookies.jar}
    assert "_iam_session" in names
    # same browser: IAM's session does not log the user in at Check-in
    checkin = Flow(idp, "checkin", scope=CHECKIN_SCOPE)
    checkin.browser = flow.browser
    _, html = checkin.login_page()
    assert "Sign in to EGI Check-in" in html
    # while IAM itself now has single sign-on, also when the client asks for consent
    again = Flow(idp, "iam")
    again.browser = flow.browser
    assert "code" in again.follow_to_client(again.authorize())
    params = again.follow_to_client(again.authorize(prompt="consent"))
    tokens = again.exchange(params["code"]).json()
    assert tokens["refresh_token"]
    # prompt=login shows the login page again
    login_url = urljoin(again.meta["issuer"], again.authorize(prompt="login").headers["location"])
    assert "Sign in to IRIS IAM" in again.browser.get(login_url).text


# -- control API ----------------------------------------------------------------------------------


def test_fail_makes_token_endpoint_answer_502_once(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    params = flow.login("ada", "ada-pass")
    idp.fail("iam", "token", status=502)
    assert flow.exchange(params["code"]).status_code == 502
    # the code was not consumed by the failed attempt
    assert flow.exchange(params["code"]).status_code == 200


def test_fail_with_status_zero_only_delays(idp: IdPProcess) -> None:
    idp.fail("checkin", "discovery", status=0, delay_ms=400)
    started = time.monotonic()
    assert discovery(idp, "checkin")["issuer"] == idp.issuer("checkin")
    assert time.monotonic() - started >= 0.4
    idp.fail("iam", "jwks", status=503, count=2)
    jwks_uri = discovery(idp, "iam")["jwks_uri"]
    assert [httpx.get(jwks_uri).status_code for _ in range(3)] == [503, 503, 200]


def test_fail_authorization_and_userinfo(idp: IdPProcess) -> None:
    flow = Flow(idp, "checkin", scope=CHECKIN_SCOPE)
    idp.fail("checkin", "authorization", status=500)
    assert flow.authorize().status_code == 500
    tokens = flow.tokens("dan", "dan-pass")
    idp.fail("checkin", "userinfo", status=504)
    response = httpx.get(
        flow.meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 504
    info = userinfo(idp, "checkin", tokens["access_token"])
    assert info["eduperson_entitlement"] == [
        "urn:mace:egi.eu:group:vo.iris.ac.uk:role=member#aai.egi.eu"
    ]
    statuses = [r["status"] for r in idp.requests("checkin")]
    assert 500 in statuses
    assert 504 in statuses


def test_next_id_token_is_substituted_once(idp: IdPProcess) -> None:
    forged = jwt.encode({"sub": "x", "iss": idp.issuer("iam")}, "k" * 32, algorithm="HS256")
    idp.next_id_token("iam", forged)
    assert Flow(idp, "iam").tokens("ada", "ada-pass")["id_token"] == forged
    normal = Flow(idp, "iam").tokens("ada", "ada-pass")["id_token"]
    assert normal != forged
    verify_id_token(idp, "iam", normal)


def test_rotate_keys_changes_published_kid(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    tokens = flow.tokens("carol", "carol-pass")
    jwks_uri = flow.meta["jwks_uri"]
    new_key = make_rsa_jwk("iam-rotated")
    try:
        idp.rotate_keys("iam", new_key)
        assert [k["kid"] for k in httpx.get(jwks_uri).json()["keys"]] == ["iam-rotated"]
        # sessions and refresh tokens survive; new ID tokens are signed with the new key
        response = refresh(flow.meta, tokens["refresh_token"])
        assert response.status_code == 200, response.text
        id_token = response.json()["id_token"]
        assert jwt.get_unverified_header(id_token)["kid"] == "iam-rotated"
        assert verify_id_token(idp, "iam", id_token)["wlcg.groups"] == ["/iris", "/iris/admins"]
        idp.rotate_keys("iam", IAM_KEY, keep_old=True)
        kids = [k["kid"] for k in httpx.get(jwks_uri).json()["keys"]]
        assert kids == [IAM_KEY["kid"], "iam-rotated"]
        assert all("d" not in k for k in httpx.get(jwks_uri).json()["keys"])
        bad = {"provider": "iam", "jwk": {"kty": "RSA", "kid": "broken", "d": "x"}}
        assert httpx.post(f"{idp.base_url}/_test/rotate-keys", json=bad).status_code == 400
        assert len(httpx.get(jwks_uri).json()["keys"]) == 2
    finally:
        idp.rotate_keys("iam", IAM_KEY)


def test_requests_log_and_reset(idp: IdPProcess) -> None:
    discovery(idp, "checkin")
    log = idp.requests("checkin")
    assert [r["path"] for r in log] == ["/auth/realms/egi/.well-known/openid-configuration"]
    assert log[0]["endpoint"] == "discovery"
    assert log[0]["method"] == "GET"
    assert idp.requests("iam") == []
    idp.reset()
    assert idp.requests("checkin") == []
    response = httpx.post(f"{idp.base_url}/_test/fail", json={"provider": "nope"})
    assert response.status_code == 404


# -- token audiences (INDIGO IAM's `audience`, RFC 8707 resource indicators underneath) -----------


def audience_refresh(meta: dict[str, Any], refresh_token: str, **extra: str) -> httpx.Response:
    """A refresh-token grant as the hub's client with extra form fields (audience, scope...)."""
    return httpx.post(
        meta["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "hub",
            "client_secret": SECRET,
            **extra,
        },
    )


def verify_access_token(
    idp: IdPProcess, provider: str, token: str, audience: str
) -> dict[str, Any]:
    """Check an audience access token as a resource server does: signature, iss, aud, exp."""
    jwks = jwt.PyJWKSet.from_dict(httpx.get(discovery(idp, provider)["jwks_uri"]).json())
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    claims: dict[str, Any] = jwt.decode(
        token,
        jwks[header["kid"]].key,
        algorithms=["RS256"],
        audience=audience,
        issuer=idp.issuer(provider),
        options={"require": ["exp", "iat", "iss", "aud", "sub", "scope"]},
    )
    return claims


@pytest.mark.parametrize("parameter", ["audience", "aud", "resource"])
def test_refresh_with_audience_issues_jwt_for_it(idp: IdPProcess, parameter: str) -> None:
    flow = Flow(idp, "iam")
    tokens = flow.tokens("ada", "ada-pass")
    response = audience_refresh(flow.meta, tokens["refresh_token"], **{parameter: "rucio"})
    assert response.status_code == 200, response.text
    body = response.json()
    claims = verify_access_token(idp, "iam", body["access_token"], "rucio")
    assert claims["aud"] == "rucio"
    assert claims["sub"] == verify_id_token(idp, "iam", tokens["id_token"])["sub"]
    assert {"openid", "profile"} <= set(claims["scope"].split())
    assert claims["exp"] - claims["iat"] == body["expires_in"] == 3600
    # the request log keeps what the client sent (IAM's parameter), not the translation
    sent = [r["form"] for r in idp.requests("iam") if r["endpoint"] == "token"][-1]
    assert sent[parameter] == "rucio"
    # the refresh token still works, and without an audience gives the usual opaque token
    plain = refresh(flow.meta, tokens["refresh_token"])
    assert plain.status_code == 200, plain.text
    assert plain.json()["access_token"].count(".") != 2
    assert userinfo(idp, "iam", plain.json()["access_token"])["sub"] == claims["sub"]


def test_first_non_empty_audience_parameter_wins(idp: IdPProcess) -> None:
    flow = Flow(idp, "checkin", scope=CHECKIN_SCOPE)
    tokens = flow.tokens("dan", "dan-pass")
    response = audience_refresh(
        flow.meta, tokens["refresh_token"], audience="", aud="rucio", resource="https://x.example/"
    )
    assert response.status_code == 200, response.text
    claims = verify_access_token(idp, "checkin", response.json()["access_token"], "rucio")
    assert claims["iss"] == idp.issuer("checkin")


def test_refresh_with_audience_keeps_scope_parameter(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    tokens = flow.tokens("ada", "ada-pass")
    response = audience_refresh(
        flow.meta, tokens["refresh_token"], audience="rucio", scope="openid profile"
    )
    assert response.status_code == 200, response.text
    claims = verify_access_token(idp, "iam", response.json()["access_token"], "rucio")
    assert claims["scope"] == "openid profile"


def test_code_exchange_with_audience_issues_jwt(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    code = flow.login("ada", "ada-pass")["code"]
    response = httpx.post(
        flow.meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": flow.verifier,
            "client_id": "hub",
            "client_secret": SECRET,
            "audience": "rucio",
        },
    )
    assert response.status_code == 200, response.text
    verify_access_token(idp, "iam", response.json()["access_token"], "rucio")


def test_unknown_audience_is_refused(idp: IdPProcess) -> None:
    flow = Flow(idp, "iam")
    tokens = flow.tokens("ada", "ada-pass")
    response = audience_refresh(flow.meta, tokens["refresh_token"], audience="someone-else")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_target"


def test_access_token_ttl_and_audiences_are_configurable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    clients = [
        {
            "provider": "iam",
            "client_id": "hub",
            "client_secret": SECRET,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_post",
        }
    ]
    with IdPProcess(
        REPO_ROOT,
        tmp_path_factory.mktemp("idp-short"),
        clients=clients,
        access_token_ttl=20,
        audiences=["rucio", "https://fts.example.org"],
    ) as short:
        flow = Flow(short, "iam")
        tokens = flow.tokens("ada", "ada-pass")
        assert tokens["expires_in"] == 20
        for audience in ("rucio", "https://fts.example.org"):
            response = audience_refresh(flow.meta, tokens["refresh_token"], audience=audience)
            assert response.status_code == 200, response.text
            body = response.json()
            claims = verify_access_token(short, "iam", body["access_token"], audience)
            assert body["expires_in"] == claims["exp"] - claims["iat"] == 20
