"""KeystoneSession against the fake Keystone: tokens, re-authentication, catalog lookup."""

from __future__ import annotations

import pytest

from devstack.openstack import (
    APP_CRED_ID,
    APP_CRED_SECRET,
    PASSWORD,
    PROJECT,
    USER,
    OpenStackServer,
)
from iris_jupyterhub.storage import (
    KeystoneSession,
    StorageConfigError,
    StorageUnavailableError,
)

from .conftest import make_session


async def test_token_is_cached(openstack: OpenStackServer, session: KeystoneSession) -> None:
    first = await session.token()
    assert await session.token() == first
    assert await session.endpoint() == openstack.manila_endpoint()
    assert openstack.tokens_issued == 1
    assert session.project_id == openstack.project_id


@pytest.mark.openstack(token_lifetime=0.0)
async def test_expired_token_is_renewed(
    openstack: OpenStackServer, session: KeystoneSession
) -> None:
    first = await session.token()
    second = await session.token()
    assert first != second
    assert openstack.tokens_issued == 2


async def test_auth_url_with_or_without_v3(openstack: OpenStackServer) -> None:
    for url in (openstack.url, openstack.auth_url, openstack.auth_url + "/"):
        keystone = KeystoneSession(
            url,
            application_credential_id=APP_CRED_ID,
            application_credential_secret=APP_CRED_SECRET,
        )
        assert keystone.auth_url == openstack.auth_url
        assert await keystone.token()
        await keystone.aclose()
    assert openstack.tokens_issued == 3


async def test_password_method(openstack: OpenStackServer) -> None:
    keystone = KeystoneSession(
        openstack.auth_url, username=USER, password=PASSWORD, project_name=PROJECT
    )
    try:
        assert await keystone.endpoint() == openstack.manila_endpoint()
    finally:
        await keystone.aclose()
    body = openstack.requests_matching("POST", "/v3/auth/tokens")[0].body
    assert body["auth"]["identity"]["methods"] == ["password"]
    assert body["auth"]["scope"]["project"]["name"] == PROJECT


def test_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="application_credential_id"):
        KeystoneSession("http://127.0.0.1:1/v3")
    with pytest.raises(ValueError, match="secret is required"):
        KeystoneSession("http://127.0.0.1:1/v3", application_credential_id="x")


async def test_bad_credentials_are_a_clear_error(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack, application_credential_secret="wrong")
    try:
        with pytest.raises(StorageUnavailableError, match="credentials rejected") as info:
            await keystone.token()
    finally:
        await keystone.aclose()
    assert info.value.retryable is False
    assert "try again" in info.value.user_message


async def test_revoked_token_reauthenticates_once(
    openstack: OpenStackServer, session: KeystoneSession
) -> None:
    endpoint = await session.endpoint()
    openstack.faults.revoke_tokens()
    response = await session.request("GET", f"{endpoint}/shares")
    assert response.status_code == 200
    assert openstack.tokens_issued == 2
    assert [r.status for r in openstack.requests_matching("GET", "/shares$")] == [401, 200]


async def test_second_401_is_credentials_rejected(
    openstack: OpenStackServer, session: KeystoneSession
) -> None:
    endpoint = await session.endpoint()
    openstack.faults.fail_next("/shares$", 401, count=5)
    with pytest.raises(StorageUnavailableError, match="credentials are rejected"):
        await session.request("GET", f"{endpoint}/shares")
    assert len(openstack.requests_matching("GET", "/shares$")) == 2
    assert openstack.tokens_issued == 2


@pytest.mark.parametrize(
    ("interface", "region", "prefix"),
    [
        ("public", "", ""),
        ("public", "RegionOne", ""),
        ("internal", "RegionOne", "/internal"),
        ("internal", "", "/internal"),
        ("public", "RegionTwo", "/region-two"),
    ],
)
async def test_catalog_interface_and_region(
    openstack: OpenStackServer, interface: str, region: str, prefix: str
) -> None:
    keystone = make_session(openstack, interface=interface, region_name=region)
    try:
        assert await keystone.endpoint() == openstack.manila_endpoint(prefix)
    finally:
        await keystone.aclose()


@pytest.mark.parametrize("served", [("sharev2",), ("shared-file-system",)])
async def test_catalog_either_service_type(served: tuple[str, ...]) -> None:
    with OpenStackServer(service_types=served) as server:
        keystone = make_session(server)
        try:
            assert await keystone.endpoint() == server.manila_endpoint()
        finally:
            await keystone.aclose()


@pytest.mark.openstack(service_types=("compute",))
async def test_missing_service_is_a_config_error(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack)
    try:
        with pytest.raises(StorageConfigError, match="no sharev2 or shared-file-system") as info:
            await keystone.endpoint()
    finally:
        await keystone.aclose()
    assert "compute (" in str(info.value)  # the catalog's content is named for the admin


async def test_missing_region_is_a_config_error(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack, region_name="Atlantis")
    try:
        with pytest.raises(StorageConfigError, match="region 'Atlantis'"):
            await keystone.endpoint()
    finally:
        await keystone.aclose()


async def test_keystone_unreachable(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack)
    openstack.faults.unreachable()
    try:
        with pytest.raises(StorageUnavailableError, match="ConnectError") as info:
            await keystone.token()
    finally:
        await keystone.aclose()
        openstack.faults.reachable()
    assert info.value.retryable


async def test_keystone_5xx(openstack: OpenStackServer, session: KeystoneSession) -> None:
    openstack.faults.fail_next("/v3/auth/tokens", 503)
    with pytest.raises(StorageUnavailableError, match="503") as info:
        await session.token()
    assert info.value.retryable
    assert await session.token()  # the next try works
