"""Fixtures for the storage layer: a fake OpenStack over real HTTP and clients bound to it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET, OpenStackServer
from iris_jupyterhub.storage import KeystoneSession, ManilaClient, RetryPolicy

#: Small bounds so failure paths finish in well under a second.
FAST = RetryPolicy(
    attempts=3,
    backoff=0.01,
    max_backoff=0.05,
    poll_interval=0.01,
    max_poll_interval=0.05,
    wait_timeout=3.0,
)


def server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("openstack")
    return dict(marker.kwargs) if marker else {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "openstack(**options): options of the fake OpenStackServer for this test"
    )


@pytest.fixture
def openstack(request: pytest.FixtureRequest) -> Iterator[OpenStackServer]:
    """A fresh fake Keystone + Manila; afterwards, no DELETE / deny_access was ever sent."""
    with OpenStackServer(**server_options(request)) as server:
        yield server
        assert server.destructive_requests == 0, "the storage layer must never delete"


#: One TLS context for all sessions: building one per httpx client costs ~0.1 s.
_TLS = ssl.create_default_context()


def make_session(server: OpenStackServer, **kwargs: Any) -> KeystoneSession:
    options: dict[str, Any] = {
        "verify": _TLS,
        "application_credential_id": APP_CRED_ID,
        "application_credential_secret": APP_CRED_SECRET,
        "timeout": 2.0,
    }
    options.update(kwargs)
    return KeystoneSession(server.auth_url, **options)


@pytest.fixture
async def session(openstack: OpenStackServer) -> AsyncIterator[KeystoneSession]:
    keystone = make_session(openstack)
    yield keystone
    await keystone.aclose()


@pytest.fixture
def client(session: KeystoneSession) -> ManilaClient:
    return ManilaClient(session, retry=FAST)
