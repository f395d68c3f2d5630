"""POSIX accounts at login through the real hub: stable across restarts, refused when unsafe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from devstack.configs import IAM_HUB_CONFIG
from devstack.login import hub_login
from devstack.stacks import Stack
from iris_jupyterhub.posix import IdentityKey, IdentityRegistry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory("iam", IAM_HUB_CONFIG)


def posix_of(stack: Stack, name: str) -> dict[str, Any]:
    r = stack.hub.api("GET", f"/users/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json()["auth_state"]["posix"])


def registry_of(stack: Stack) -> IdentityRegistry:
    return IdentityRegistry(db_url=f"sqlite:///{stack.hub.workdir}/iris-identities.sqlite")


def test_login_stores_posix_account_in_auth_state(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    posix = posix_of(stack, "aresearcher")
    assert posix["username"] == "aresearcher"
    assert 2_001_000_000 <= posix["uid"] <= 2_069_999_999
    assert 2_070_000_000 <= posix["gid"] <= 2_139_999_999
    names = [g["name"] for g in posix["groups"]]
    assert names[0] == "aresearcher"  # personal group first
    assert {"iris", "iris-lsst", "dune", "dune-production"} <= set(names)
    assert len({g["gid"] for g in posix["groups"]}) == len(posix["groups"])
    # the registry file sits beside the hub database and agrees
    key = IdentityKey(stack.issuer.rstrip("/"), stack.user("ada")["sub"])
    account = registry_of(stack).lookup(key)
    assert account is not None
    assert account.uid == posix["uid"]


def test_same_uid_and_gids_after_hub_restart(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "bob", "bob-pass").status == 302
    before = posix_of(stack, "bbuilder")
    stack.hub.restart()
    assert hub_login(stack.hub.url, "bob", "bob-pass").status == 302
    assert posix_of(stack, "bbuilder") == before


def test_groups_follow_the_idp_but_gids_stay(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    first = {g["name"]: g["gid"] for g in posix_of(stack, "aresearcher")["groups"]}
    user = stack.user("ada")
    user["userinfo"]["groups"] = ["iris"]
    user["id_token"]["wlcg.groups"] = ["/iris"]
    stack.idp.upsert_user("iam", user)
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    now = {g["name"]: g["gid"] for g in posix_of(stack, "aresearcher")["groups"]}
    assert set(now) == {"aresearcher", "iris"}
    assert now["iris"] == first["iris"]
    assert now["aresearcher"] == first["aresearcher"]


def test_tampered_registry_refuses_the_affected_logins(stack: Stack) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    assert hub_login(stack.hub.url, "bob", "bob-pass").status == 302
    ada_uid = posix_of(stack, "aresearcher")["uid"]
    engine = sa.create_engine(f"sqlite:///{stack.hub.workdir}/iris-identities.sqlite")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_posix_identities_uid"))
        conn.execute(
            sa.text("UPDATE posix_identities SET uid = :uid WHERE username = 'bbuilder'"),
            {"uid": ada_uid},
        )
    try:
        for who in ("ada", "bob"):
            attempt = hub_login(stack.hub.url, who, f"{who}-pass")
            assert attempt.status == 403, attempt.text
        assert any(p.kind for p in registry_of(stack).check())
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM posix_memberships"))
            conn.execute(sa.text("DELETE FROM posix_identities"))
            conn.execute(
                sa.text("CREATE UNIQUE INDEX ix_posix_identities_uid ON posix_identities (uid)")
            )


def test_exhausted_uid_range_refuses_login_with_503(
    stack_factory: Callable[..., Stack],
) -> None:
    tiny = stack_factory(
        "iam",
        IAM_HUB_CONFIG + "\nc.IdentityRegistry.uid_range = (2001000000, 2001000001)\n",
    )
    assert hub_login(tiny.hub.url, "ada", "ada-pass").status == 302
    assert hub_login(tiny.hub.url, "bob", "bob-pass").status == 302
    attempt = hub_login(tiny.hub.url, "carol", "carol-pass")
    assert attempt.status == 503, attempt.text
    assert "IdentityRegistry.uid_range" in tiny.hub.log_text()
    assert tiny.hub.api("GET", "/users/cadmin").status_code == 404
    uids = sorted(a.uid for a in registry_of(tiny).iter_accounts())
    assert uids == [2001000000, 2001000001]
