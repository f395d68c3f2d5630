"""The Rucio endpoint when authenticating the request, or the token request, fails.

A real hub and the real test IdP, which rotates refresh tokens.

JupyterHub refreshes a token-authenticated user's auth state every ``auth_refresh_age``
seconds while it authenticates the request; when that refresh raises (the provider down
beyond ``idp_outage_grace``, the user no longer in an allowed group), JupyterHub carries
on with no current user. The endpoint must still say why, with a ``reason``, so the
notebook side can tell a passing outage from a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.configs import IAM_HUB_CONFIG
from devstack.login import hub_login
from devstack.stacks import Stack, restore_idp, start_stack
from tests.rucio.test_endpoint import INSTANCES, URL, auth_state, get, user_token

pytestmark = pytest.mark.e2e

REFRESH_AGE = 1
# the test IdP has no token exchange grant: it refuses every exchange
EXCHANGE = {"name": "xchg", "rucio_host": "https://rucio.x.example.ac.uk", "groups": ["dune"]}
EXCHANGE["grant"] = "token_exchange"
CONFIG = (
    IAM_HUB_CONFIG
    + f"""
from iris_jupyterhub.rucio import configure_hub
configure_hub(c, {[*INSTANCES, EXCHANGE]!r})
c.IAMAuthenticator.auth_refresh_age = {REFRESH_AGE}
c.IAMAuthenticator.idp_outage_grace = 0
"""
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # 30-second access tokens: a token exchange renews the hub's access token first
    options = {"iam": {"ttl": {"AccessToken": 30}, "rotate_refresh_token": True}}
    stack = start_stack(
        tmp_path_factory.mktemp("rucio-auth"), "iam", CONFIG, provider_options=options
    )
    yield stack
    stack.stop()


@pytest.fixture(autouse=True)
def _restore(stack: Stack) -> Iterator[None]:
    yield
    restore_idp(stack)


def _token_after_refresh_age(stack: Stack) -> str:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    time.sleep(REFRESH_AGE + 0.2)  # the next request refreshes the user first
    return token


def test_idp_down_while_authenticating_gives_idp_unavailable(stack: Stack) -> None:
    token = _token_after_refresh_age(stack)
    stack.idp.fail("iam", "token", status=503, count=3)
    r = get(stack, token, "cam")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["reason"] == "idp_unavailable", body
    assert body["status"] == 503
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["Cache-Control"] == "no-store"


def test_user_who_left_the_vo_gets_not_allowed(stack: Stack) -> None:
    token = _token_after_refresh_age(stack)
    user = stack.user("ada")
    user["userinfo"]["groups"] = []
    user["id_token"]["wlcg.groups"] = []
    stack.idp.upsert_user("iam", user)
    r = get(stack, token, "cam")
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["reason"] == "not_allowed", body
    assert "no longer a member" in body["message"]


def test_a_request_without_a_user_names_the_reason(stack: Stack) -> None:
    r = get(stack, "not-a-token", "cam")
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "not_a_user_server", r.text
    r = httpx.get(stack.hub.url + URL.format("cam"), timeout=30)
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "not_a_user_server", r.text


def test_refresh_token_rotated_before_a_refused_exchange_is_kept(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    token = user_token(stack, "aresearcher")
    before = auth_state(stack, "aresearcher")["refresh_token"]
    r = get(stack, token, "xchg")  # renews the hub's access token, then the exchange fails
    assert r.status_code == 503, r.text
    assert r.json()["reason"] == "idp_unavailable"
    assert auth_state(stack, "aresearcher")["refresh_token"] != before
    # the refresh token chain still works: no new login needed
    r = get(stack, token, "cam")
    assert r.status_code == 200, r.text
