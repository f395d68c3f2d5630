"""Token requests, cache entries and answers, as plain data."""

from __future__ import annotations

import jwt
import pytest
from sqlalchemy.exc import OperationalError

from iris_jupyterhub.errors import http_error, service_unavailable
from iris_jupyterhub.rucio import validate_instances
from iris_jupyterhub.rucio.tokens import (
    TOKEN_EXCHANGE_GRANT,
    RucioTokenError,
    auth_failure,
    cache_entry,
    error_answer,
    exchange_params,
    is_fresh,
    oauth_error,
    refresh_params,
    token_answer,
)

[RAL] = validate_instances(
    [
        {
            "name": "ral",
            "rucio_host": "https://rucio.example.ac.uk",
            "vo": "def",
            "groups": ["iris"],
            "audience": "https://rucio.example.ac.uk",
            "scopes": ["openid", "profile", "wlcg.groups"],
        }
    ]
)
CLIENT_POST = {"grant_type": "x", "refresh_token": "", "client_id": "hub", "client_secret": "s"}


def test_refresh_grant_with_audience_and_client_in_the_body() -> None:
    assert refresh_params(RAL, "RT", CLIENT_POST) == {
        "grant_type": "refresh_token",
        "refresh_token": "RT",
        "audience": "https://rucio.example.ac.uk",
        "scope": "openid profile wlcg.groups",
        "client_id": "hub",
        "client_secret": "s",
    }


def test_refresh_grant_with_basic_auth_has_no_client_in_the_body() -> None:
    params = refresh_params(RAL, "RT", {"grant_type": "refresh_token", "refresh_token": ""})
    assert "client_secret" not in params
    assert params["refresh_token"] == "RT"


def test_token_exchange_params() -> None:
    assert exchange_params(RAL, "AT", {}) == {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": "AT",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "https://rucio.example.ac.uk",
        "scope": "openid profile wlcg.groups",
    }


def test_cache_entry_expiry_from_expires_in_then_jwt_then_default() -> None:
    assert cache_entry({"access_token": "a", "expires_in": 20}, now=1000) == {
        "access_token": "a",
        "expires_at": 1020,
        "obtained_at": 1000,
    }
    signed = jwt.encode({"exp": 1500, "aud": "rucio"}, "k" * 32, algorithm="HS256")
    assert cache_entry({"access_token": signed}, now=1000)["expires_at"] == 1500
    assert cache_entry({"access_token": "opaque"}, now=1000)["expires_at"] == 1300
    with pytest.raises(ValueError, match="no access_token"):
        cache_entry({"token_type": "Bearer"}, now=1000)


@pytest.mark.parametrize(
    ("entry", "now", "fresh"),
    [
        ({"access_token": "a", "expires_at": 4600, "obtained_at": 1000}, 1000, True),
        ({"access_token": "a", "expires_at": 4600, "obtained_at": 1000}, 4479, True),
        ({"access_token": "a", "expires_at": 4600, "obtained_at": 1000}, 4480, False),
        # a 20 s token: reused for half its life, not the whole 120 s margin
        ({"access_token": "a", "expires_at": 1020, "obtained_at": 1000}, 1009, True),
        ({"access_token": "a", "expires_at": 1020, "obtained_at": 1000}, 1010, False),
        ({"access_token": "a", "expires_at": 1020}, 1000, False),
        ({"expires_at": 9999, "obtained_at": 1000}, 1000, False),
        (None, 1000, False),
        ("a", 1000, False),
    ],
)
def test_is_fresh(entry: object, now: float, fresh: bool) -> None:
    assert is_fresh(entry, margin=120, now=now) is fresh


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            b'{"error": "invalid_grant", "error_description": "grant request is invalid"}',
            "invalid_grant",
        ),
        ('{"error": "invalid_target"}', "invalid_target"),
        (b"<html>bad gateway</html>", None),
        (b"[1]", None),
        (None, None),
    ],
)
def test_oauth_error(body: bytes | str | None, code: str | None) -> None:
    assert oauth_error(body) == code


def test_answers() -> None:
    entry = {"access_token": "AT", "expires_at": 1020.0, "obtained_at": 1000}
    assert token_answer(RAL, entry, "ada") == {
        "instance": "ral",
        "access_token": "AT",
        "expires_at": 1020,
        "account": "ada",
        "rucio_host": "https://rucio.example.ac.uk",
        "auth_host": "https://rucio.example.ac.uk",
        "vo": "def",
    }
    error = RucioTokenError("idp_unavailable", "Try later.", "detail", retry_after=30)
    assert error_answer(error) == {
        "status": 503,
        "reason": "idp_unavailable",
        "message": "Try later.",
    }
    assert error.headers == {"Retry-After": "30"}
    assert RucioTokenError("not_in_group", "No.").status == 403
    assert RucioTokenError("unknown_instance", "No.").status == 404
    with pytest.raises(KeyError):
        RucioTokenError("bogus", "No.")


def test_auth_failure_maps_what_authentication_raised() -> None:
    none = auth_failure(None, "IRIS IAM")
    assert (none.status, none.reason) == (403, "not_a_user_server")
    outage = auth_failure(service_unavailable("IRIS IAM", retry_after=45), "IRIS IAM")
    assert (outage.status, outage.reason, outage.headers) == (
        503,
        "idp_unavailable",
        {"Retry-After": "45"},
    )
    left = auth_failure(http_error(403, "You are no longer a member."), "IRIS IAM")
    assert (left.status, left.reason, left.user_message) == (
        403,
        "not_allowed",
        "You are no longer a member.",
    )
    database = auth_failure(OperationalError("SELECT", {}, Exception("locked")), "IRIS IAM")
    assert (database.status, database.reason, database.headers) == (
        503,
        "hub_unavailable",
        {"Retry-After": "30"},
    )
