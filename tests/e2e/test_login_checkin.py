"""Logins with EGICheckinAuthenticator: entitlements only in userinfo, non-unique usernames."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from devstack.configs import CHECKIN_HUB_CONFIG
from devstack.stacks import Stack, login

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory("checkin", CHECKIN_HUB_CONFIG)


def test_entitlements_from_userinfo_become_canonical_groups(stack: Stack) -> None:
    attempt = login(stack, "ada")
    assert attempt.status == 302, attempt.text
    assert set(attempt.authorize_params["scope"].split()) == {
        "openid",
        "profile",
        "email",
        "voperson_id",
        "eduperson_entitlement",
        "offline_access",
    }
    user = stack.hub.api("GET", "/users/ada").json()
    state = user["auth_state"]
    assert state["groups"] == [
        "iris-training:role=member",
        "vo.access.egi.eu:role=member",
        "vo.iris.ac.uk:role=member",
        "vo.iris.ac.uk:role=vm_operator",
        "vo.iris.ac.uk/lsst:role=member",
        "vo.iris.ac.uk/lsst/desc:role=manager",
    ]
    assert sorted(user["groups"]) == [
        "iris-training",
        "vo.access.egi.eu",
        "vo.iris.ac.uk",
        "vo.iris.ac.uk/lsst",
        "vo.iris.ac.uk/lsst/desc",
    ]
    # role-aware admin rule
    assert user["admin"] is True
    # identity from voperson_id, and the ID token carried no entitlements
    sub = stack.user("ada")["sub"]
    assert state["identity"]["subject"] == sub
    assert state["identity"]["subject_claim"] == "voperson_id"
    assert state["identity"]["issuer"].endswith("/auth/realms/egi")
    assert "eduperson_entitlement" not in stack.user("ada")["id_token"]


def test_member_with_required_role_logs_in_without_admin(stack: Stack) -> None:
    assert login(stack, "dan").status == 302
    user = stack.hub.api("GET", "/users/dan").json()
    assert user["admin"] is False
    assert user["groups"] == ["vo.iris.ac.uk"]


def test_same_preferred_username_different_person_is_refused(stack: Stack) -> None:
    assert login(stack, "ada").status == 302
    attempt = login(stack, "ada2")
    assert attempt.status == 403, attempt.text
    assert "already belongs to a different account" in attempt.text
    # the first person's hub user and identity are untouched
    state = stack.hub.api("GET", "/users/ada").json()["auth_state"]
    assert state["identity"]["subject"] == stack.user("ada")["sub"]


def test_missing_required_group_is_refused_with_the_group_named(stack: Stack) -> None:
    user = stack.user("ada2")
    user["userinfo"]["preferred_username"] = "ada-two"
    user["id_token"]["preferred_username"] = "ada-two"
    stack.idp.upsert_user("checkin", user)
    attempt = login(stack, "ada2")
    assert attempt.status == 403
    assert "vo.iris.ac.uk:role=member" in attempt.text
    assert stack.hub.api("GET", "/users/ada-two").status_code == 404


def test_role_matters_for_required_groups(stack: Stack) -> None:
    user = stack.user("dan")
    user["userinfo"]["eduperson_entitlement"] = [
        "urn:mace:egi.eu:group:vo.iris.ac.uk:role=vm_operator#aai.egi.eu"
    ]
    stack.idp.upsert_user("checkin", user)
    attempt = login(stack, "dan")
    assert attempt.status == 403
    assert "not a member of vo.iris.ac.uk:role=member" in attempt.text


def test_changed_identity_at_refresh_requires_a_new_login(stack: Stack) -> None:
    assert login(stack, "dan").status == 302
    user = stack.user("dan")
    for part in ("userinfo", "id_token"):
        user[part]["voperson_id"] = "f" * 64 + "@egi.eu"
    stack.idp.upsert_user("checkin", user)
    token = stack.hub.api("POST", "/users/dan/tokens", json={"note": "t"}).json()["token"]
    r = httpx.post(
        f"{stack.hub.url}/hub/api/users/dan/server",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert r.status_code == 403, r.text
    assert "reports a different account" in r.json()["message"]
    assert "returned a different identity" in stack.hub.log_text()
