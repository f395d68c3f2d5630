"""Pure pieces of the authenticator: discovery metadata, replay memory, identity, rules."""

from __future__ import annotations

import logging

import pytest
from tornado import web

from iris_jupyterhub.auth.handlers import UsedStates
from iris_jupyterhub.auth.identity import (
    check_identity_binding,
    identity_from_claims,
    same_identity,
)
from iris_jupyterhub.auth.provider import ProviderMetadata
from iris_jupyterhub.auth.rules import GroupPolicy
from iris_jupyterhub.groups import (
    membership_from_string,
    memberships_from_auth_state,
    parse_group_rule,
)

ISSUER = "https://iris-iam.stfc.ac.uk/"
DOC = {
    "issuer": ISSUER,
    "authorization_endpoint": "https://iris-iam.stfc.ac.uk/authorize",
    "token_endpoint": "https://iris-iam.stfc.ac.uk/token",
    "userinfo_endpoint": "https://iris-iam.stfc.ac.uk/userinfo",
    "jwks_uri": "https://iris-iam.stfc.ac.uk/jwk",
}


def test_discovery_document_is_applied_and_explicit_endpoints_win() -> None:
    meta = ProviderMetadata(ISSUER, explicit={"token_endpoint": "https://proxy/token"})
    meta.apply_discovery(DOC, now=100)
    assert meta.endpoint("authorization_endpoint") == DOC["authorization_endpoint"]
    assert meta.endpoint("token_endpoint") == "https://proxy/token"
    assert meta.fresh(ttl=10, now=105)
    assert not meta.fresh(ttl=10, now=111)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "https://evil.example/"}, "issuer"),
        ({"token_endpoint": "not a url"}, "token_endpoint"),
        ({"jwks_uri": None}, "jwks_uri"),
    ],
)
def test_bad_discovery_documents_are_refused(change: dict[str, object], message: str) -> None:
    meta = ProviderMetadata(ISSUER)
    with pytest.raises(ValueError, match=message):
        meta.apply_discovery({**DOC, **change})
    assert not meta.discovered


def test_discovery_issuer_slash_difference_is_accepted() -> None:
    meta = ProviderMetadata(ISSUER.rstrip("/"))
    meta.apply_discovery(DOC)
    assert meta.discovered


def test_jwks_validation_and_age() -> None:
    meta = ProviderMetadata(ISSUER)
    assert meta.jwks_age(now=5) == float("inf")
    with pytest.raises(ValueError, match="keys"):
        meta.set_jwks({"nokeys": []})
    meta.set_jwks({"keys": []}, now=10)
    assert meta.jwks_age(now=15) == 5
    assert meta.jwks_fresh(ttl=6, now=15)


def test_used_states_refuse_replays_and_forget_old_entries() -> None:
    states = UsedStates(ttl=60, max_entries=3)
    assert states.consume("a", now=0)
    assert not states.consume("a", now=1)
    assert states.consume("b", now=2)
    assert states.consume("a", now=100)  # expired entries are forgotten
    for name in "cdef":
        assert states.consume(name, now=101)
    assert len(states._seen) <= 3


def test_identity_from_claims_prefers_configured_order() -> None:
    claims = {"sub": "s-1", "voperson_id": "v-1@egi.eu"}
    found = identity_from_claims(ISSUER, claims, ["voperson_id", "sub"])
    assert found == {
        "issuer": ISSUER.rstrip("/"),
        "subject": "v-1@egi.eu",
        "subject_claim": "voperson_id",
    }
    assert identity_from_claims(ISSUER, {"voperson_id": 5, "sub": "s"}, ["voperson_id", "sub"])
    assert identity_from_claims(ISSUER, {"sub": "x" * 300}, ["sub"]) is None
    assert identity_from_claims(ISSUER, {}, ["sub"]) is None


def test_identity_binding() -> None:
    log = logging.getLogger("test")
    ada = {"identity": {"issuer": "i", "subject": "a"}}
    other = {"identity": {"issuer": "i", "subject": "b"}}
    check_identity_binding("ada", ada, ada, log)
    check_identity_binding("ada", None, ada, log)  # first login binds
    check_identity_binding("ada", {}, ada, log)
    with pytest.raises(web.HTTPError) as info:
        check_identity_binding("ada", ada, other, log)
    assert info.value.status_code == 403
    assert info.value.jupyterhub_message == (  # type: ignore[attr-defined]
        "The hub username 'ada' already belongs to a different account, so you cannot be "
        "signed in as it. This happens when two people share a user name at their identity "
        "provider, or when your account there was created again. Please contact the hub "
        "administrators and mention 'username conflict'."
    )
    assert not same_identity(None, ada["identity"])


def test_group_policy() -> None:
    members = [membership_from_string(s) for s in ("iris", "iris/lsst:role=member")]
    policy = GroupPolicy(
        allowed=frozenset({parse_group_rule("dune"), parse_group_rule("iris/lsst")}),
        required=frozenset({parse_group_rule("iris"), parse_group_rule("iris/lsst:role=manager")}),
        admin=frozenset({parse_group_rule("iris:role=admin")}),
    )
    assert policy.is_allowed(members)
    assert not policy.is_admin(members)
    assert policy.missing_required(members) == ["iris/lsst:role=manager"]
    assert policy.describe_required() == "iris, iris/lsst:role=manager"
    # what admitted them (charged for their usage): required first, then allowed
    assert policy.admitted_by(members) == ["iris", "iris/lsst"]


def test_memberships_from_auth_state_skips_garbage() -> None:
    state = {"groups": ["iris", "bad//group", 5, "iris/lsst:role=member"]}
    assert [str(m) for m in memberships_from_auth_state(state)] == [
        "iris",
        "iris/lsst:role=member",
    ]
    assert memberships_from_auth_state({}) == []
