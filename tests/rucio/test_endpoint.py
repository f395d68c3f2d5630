"""``GET /hub/api/iris/rucio/<instance>/token`` on a real hub against the real test IdP.

The IdP (``tests/idp/server.mjs``) issues 30-second access tokens and rotates refresh
tokens (each refresh replaces the refresh token and the old one stops working), so a
Rucio token request that used or lost a stale refresh token would fail the next one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from devstack.configs import IAM_HUB_CONFIG
from devstack.idp import public_jwk
from devstack.login import hub_login
from devstack.stacks import Stack, restore_idp, start_stack

pytestmark = pytest.mark.e2e

TTL = 30
INSTANCES = [
    {
        "name": "ral",
        "display_name": "RAL Rucio",
        "rucio_host": "https://rucio.ral.example.ac.uk",
        "auth_host": "https://rucio-auth.ral.example.ac.uk",
        "vo": "def",
        "groups": ["iris/lsst"],
        "account": "{username}",
    },
    {
        "name": "cam",
        "rucio_host": "https://rucio.cam.example.ac.uk",
        "groups": ["dune"],
    },
]
RUCIO_HUB_CONFIG = (
    IAM_HUB_CONFIG
    + f"""
from iris_jupyterhub.rucio import configure_hub
configure_hub(c, {INSTANCES!r})
c.RucioTokens.renewal_margin = 10
"""
)
URL = "/hub/api/iris/rucio/{}/token"
SECRET = "s3cret"  # the hub's client secret at the test IdP (devstack.configs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = {"iam": {"ttl": {"AccessToken": TTL}, "rotate_refresh_token": True}}
    stack = start_stack(
        tmp_path_factory.mktemp("rucio"), "iam", RUCIO_HUB_CONFIG, provider_options=options
    )
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def _restore(stack: Stack) -> Iterator[None]:
    yield
    token_requests(stack)  # remember the refresh tokens sent before the log is cleared
    restore_idp(stack)


ANSWERS: list[str] = []  # every answer body, checked for secrets at the end
REFRESH_TOKENS: set[str] = set()  # every refresh token the hub sent to the IdP


def get(stack: Stack, token: str, instance: str) -> httpx.Response:
    r = httpx.get(
        stack.hub.url + URL.format(instance),
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    ANSWERS.append(r.text)
    return r


def user_token(stack: Stack, name: str, scopes: list[str] | None = None) -> str:
    body: dict[str, Any] = {"note": "rucio test"}
    if scopes is not None:
        body["scopes"] = scopes
    r = stack.hub.api("POST", f"/users/{name}/tokens", json=body)
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


def auth_state(stack: Stack, name: str) -> dict[str, Any]:
    state: dict[str, Any] = stack.hub.api("GET", f"/users/{name}").json()["auth_state"]
    return state


def token_requests(stack: Stack) -> list[dict[str, Any]]:
    found = [r for r in stack.idp.requests("iam") if r["endpoint"] == "token"]
    REFRESH_TOKENS.update(
        r["form"]["refresh_token"] for r in found if "refresh_token" in (r["form"] or {})
    )
    return found


def server_api_token(stack: Stack, name: str) -> str:
    """The ``JUPYTERHUB_API_TOKEN`` of ``name``'s running server (a child of the hub)."""
    assert stack.hub.proc is not None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != stack.hub.proc.pid:
            continue
        env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
        if env.get("JUPYTERHUB_USER") == name:
            return env["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no server process of {name}")


def start_server(stack: Stack, name: str) -> str:
    r = stack.hub.api("POST", f"/users/{name}/server")
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 90
    while not stack.hub.api("GET", f"/users/{name}").json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, stack.hub.log_tail()
        time.sleep(0.3)
    return server_api_token(stack, name)


def test_a_server_gets_its_users_token_and_it_is_cached(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = start_server(stack, "aresearcher")
    before = len(token_requests(stack))
    r = get(stack, token, "ral")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == {
        "instance", "access_token", "expires_at", "account", "rucio_host", "auth_host", "vo"
    }  # fmt: skip
    assert answer["instance"] == "ral"
    assert answer["account"] == "aresearcher"
    assert answer["rucio_host"] == "https://rucio.ral.example.ac.uk"
    assert answer["auth_host"] == "https://rucio-auth.ral.example.ac.uk"
    assert answer["vo"] == "def"
    assert TTL - 5 <= answer["expires_at"] - time.time() <= TTL + 1
    assert r.headers["Cache-Control"] == "no-store"
    # what Rucio checks: a JWT from the IdP with aud=rucio and the scopes, for Ada
    claims = jwt.decode(
        answer["access_token"],
        jwt.PyJWK(public_jwk(stack.keys["iam"])).key,
        algorithms=["RS256"],
        audience="rucio",
        issuer=stack.issuer,
    )
    assert {"openid", "profile"} <= set(claims["scope"].split())
    assert claims["sub"] == stack.user("ada")["sub"]
    # the token request: refresh_token grant with the audience and Rucio's scopes
    [request] = token_requests(stack)[before:]
    form = request["form"]
    assert form["grant_type"] == "refresh_token"
    assert form["audience"] == "rucio"
    assert form["scope"] == "openid profile"
    # kept in the encrypted auth_state, handed out again while fresh
    state = auth_state(stack, "aresearcher")
    assert state["rucio"]["ral"]["access_token"] == answer["access_token"]
    again = get(stack, token, "ral")
    assert again.json() == answer
    assert len(token_requests(stack)) == before + 1
    # the second instance: account is the identity's default (none), no VO
    cam = get(stack, token, "cam").json()
    assert (cam["account"], cam["vo"], cam["auth_host"]) == (
        None,
        None,
        "https://rucio.cam.example.ac.uk",
    )


def test_renewed_before_expiry_and_rotated_refresh_token_kept(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    first = get(stack, token, "ral").json()
    refresh_before = auth_state(stack, "aresearcher")["refresh_token"]
    # the entry is reused for half its 30 s lifetime (renewal_margin 10 s is less)
    time.sleep(max(0.0, first["expires_at"] - 9 - time.time()))
    renewed = get(stack, token, "ral")
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["access_token"] != first["access_token"]
    assert renewed.json()["expires_at"] > first["expires_at"]
    state = auth_state(stack, "aresearcher")
    assert state["refresh_token"] != refresh_before  # the IdP rotated it; the new one kept
    # ... and it works: the other instance needs a new token, with the rotated refresh token
    r = get(stack, token, "cam")
    assert r.status_code == 200, r.text
    assert auth_state(stack, "aresearcher")["refresh_token"] != state["refresh_token"]


def test_concurrent_requests_share_one_refresh_token_chain(stack: Stack) -> None:
    """Requests of one user run one at a time: with a rotating IdP, two requests that both
    used the same refresh token would make the second one fail (the IdP refuses a replaced
    refresh token)."""
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda name: get(stack, token, name), ["ral", "cam"] * 3))
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert len({r.json()["access_token"] for r in answers}) == 2  # one per instance, cached
    grants = [r["form"] for r in token_requests(stack) if r["form"]]
    assert [g["grant_type"] for g in grants][-2:] == ["refresh_token", "refresh_token"]
    assert grants[-1]["refresh_token"] != grants[-2]["refresh_token"]  # the rotated one


def test_user_in_no_rucio_group_gets_not_in_group(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "bob", "bob-pass").status == 302
    token = start_server(stack, "bbuilder")
    r = get(stack, token, "ral")
    assert r.status_code == 403
    assert r.json() == {
        "status": 403,
        "reason": "not_in_group",
        "message": "RAL Rucio is offered to members of iris/lsst, and according to IRIS IAM "
        "you are in none of them. Ask your VO manager if you think you should be.",
    }
    assert "access_token" not in r.text


def test_unknown_instance(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    r = get(stack, user_token(stack, "aresearcher"), "nowhere")
    assert r.status_code == 404
    assert r.json()["reason"] == "unknown_instance"


def test_another_users_server_cannot_get_the_token(stack: Stack) -> None:
    """Bob's server token answers only for Bob; without the scope, nothing; a service
    (even one holding admin:auth_state) gets no Rucio token either."""
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    assert hub_login(stack.hub.url, "bob", "bob-pass").status == 302
    ada = get(stack, user_token(stack, "aresearcher"), "ral").json()["access_token"]
    bob_server = server_api_token(stack, "bbuilder") if _running(stack, "bbuilder") else None
    bob_server = bob_server or start_server(stack, "bbuilder")
    r = get(stack, bob_server, "ral")
    assert r.status_code == 403
    assert r.json()["reason"] == "not_in_group"
    assert ada not in r.text
    # a token of Ada's without the custom scope
    narrow = user_token(stack, "aresearcher", scopes=["read:users!user"])
    r = get(stack, narrow, "ral")
    assert r.status_code == 403
    assert ada not in r.text
    assert "reason" not in r.json()
    # the admin test service
    r = get(stack, stack.hub.api_token, "ral")
    assert r.status_code == 403
    assert ada not in r.text


def _running(stack: Stack, name: str) -> bool:
    return bool(stack.hub.api("GET", f"/users/{name}").json()["servers"])


def test_server_token_holds_only_the_filtered_scope(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = server_api_token(stack, "aresearcher") if _running(stack, "aresearcher") else None
    token = token or start_server(stack, "aresearcher")
    r = httpx.get(
        f"{stack.hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10
    )
    scopes = r.json()["scopes"]
    assert "custom:iris-rucio-token!user=aresearcher" in scopes
    assert not any(s.startswith("admin:auth_state") for s in scopes)
    assert "auth_state" not in r.json()


def test_revoked_refresh_token_gives_login_required(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    state = auth_state(stack, "aresearcher")
    revoke = httpx.post(
        stack.issuer + "revoke",
        data={
            "token": state["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": "hub",
            "client_secret": SECRET,
        },
        timeout=10,
    )
    assert revoke.status_code == 200, revoke.text
    r = get(stack, token, "cam")  # no cached token for cam after the login
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["reason"] == "login_required"
    assert "Log out of the hub and log in again" in body["message"]
    assert "refused the refresh token (invalid_grant" in stack.hub.log_text()


def test_idp_down_gives_503_with_retry_after(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    stack.idp.fail("iam", "token", status=503, count=1)
    r = get(stack, token, "cam")
    assert r.status_code == 503, r.text
    assert r.json()["reason"] == "idp_unavailable"
    assert int(r.headers["Retry-After"]) > 0
    # the provider is back: the next request works
    r = get(stack, token, "cam")
    assert r.status_code == 200, r.text


def test_no_refresh_token_or_client_secret_in_answers_or_hub_log(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    assert get(stack, token, "ral").status_code == 200
    token_requests(stack)
    refresh_tokens = {*REFRESH_TOKENS, auth_state(stack, "aresearcher")["refresh_token"]}
    assert len(refresh_tokens) > 3
    log = stack.hub.log_text()
    assert ANSWERS
    for text in [*ANSWERS, log]:
        assert SECRET not in text
        for refresh_token in refresh_tokens:
            assert refresh_token not in text
    for answer in ANSWERS:
        if '"access_token"' in answer:
            access = httpx.Response(200, text=answer).json()["access_token"]
            assert access not in log
