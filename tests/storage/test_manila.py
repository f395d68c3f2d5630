"""ManilaClient against the fake Manila: versions, shares, rules, errors, retries."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devstack.openstack import OpenStackServer
from iris_jupyterhub.storage import (
    MAX_MICROVERSION,
    KeystoneSession,
    ManilaClient,
    RetryPolicy,
    StorageError,
    StorageNotFoundError,
    StorageQuotaError,
    StorageStateError,
    StorageUnavailableError,
    StorageVersionError,
)

from .conftest import FAST, make_session

META = {"iris_jupyterhub_key": "user:abc"}


async def create(client: ManilaClient, metadata: dict[str, str] = META, size: int = 10) -> str:
    share = await client.create_share(
        name="home-abc",
        size_gb=size,
        share_type=None,
        share_network_id=None,
        availability_zone=None,
        metadata=metadata,
    )
    return share.id


# ------------------------------------------------------------------ versions


async def test_negotiates_our_maximum(openstack: OpenStackServer, client: ManilaClient) -> None:
    assert await client.negotiate() == MAX_MICROVERSION
    await client.find_shares(META)
    versions = {r.microversion for r in openstack.requests_matching(path_regex="/v2/")}
    assert versions == {MAX_MICROVERSION}
    assert await client.negotiate() == MAX_MICROVERSION
    assert len(openstack.requests_matching("GET", "^/$")) == 1  # cached


@pytest.mark.openstack(max_microversion="2.50")
async def test_negotiates_server_maximum(client: ManilaClient) -> None:
    assert await client.negotiate() == "2.50"


@pytest.mark.openstack(max_microversion="2.44")
async def test_too_old_server(openstack: OpenStackServer, client: ManilaClient) -> None:
    with pytest.raises(StorageVersionError, match=r"up to 2\.44.*at least 2\.45"):
        await client.find_shares(META)
    assert openstack.requests_matching(path_regex="/v2/") == []


async def test_fake_server_microversion_rules(
    openstack: OpenStackServer, session: KeystoneSession
) -> None:
    """The fake behaves like Manila: default 2.0, 400 bad format, 406 out of range, 2.45+."""
    endpoint = await session.endpoint()
    header = "X-OpenStack-Manila-API-Version"
    response = await session.request("GET", f"{endpoint}/shares")
    assert response.headers[header] == "2.0"
    response = await session.request("GET", f"{endpoint}/shares", headers={header: "2.x"})
    assert response.status_code == 400
    assert "invalid format" in response.json()["badRequest"]["message"]
    response = await session.request("GET", f"{endpoint}/shares", headers={header: "2.99"})
    assert response.status_code == 406
    rules = f"{endpoint}/share-access-rules"
    response = await session.request(
        "GET", rules, params={"share_id": "x"}, headers={header: "2.44"}
    )
    assert response.status_code == 404
    response = await session.request(
        "GET", rules, params={"share_id": "x"}, headers={header: "2.45"}
    )
    assert response.json() == {
        "itemNotFound": {"code": 404, "message": "Share x could not be found."}
    }
    response = await session.request("POST", f"{endpoint}/shares/x/action", json={"grow": {}})
    assert response.status_code == 404


async def test_fake_server_unknown_action_and_delete(session: KeystoneSession) -> None:
    """Unknown actions are 400; DELETE works but is counted as destructive."""
    with OpenStackServer() as server:
        keystone = make_session(server)
        client = ManilaClient(keystone, retry=FAST)
        try:
            share_id = await create(client)
            url = f"{await keystone.endpoint()}/shares/{share_id}"
            response = await keystone.request("POST", f"{url}/action", json={"grow": {}})
            assert response.json() == {
                "badRequest": {"code": 400, "message": "There is no such action: grow"}
            }
            assert (await keystone.request("DELETE", url)).status_code == 202
        finally:
            await keystone.aclose()
        assert server.destructive_requests == 1
        assert server.shares() == []


# -------------------------------------------------------------------- shares


async def test_share_lifecycle(openstack: OpenStackServer, client: ManilaClient) -> None:
    share_id = await create(client)
    assert (await client.get_share(share_id)).status == "creating"
    share = await client.wait_share_available(share_id)
    assert share.status == "available"
    assert share.share_proto == "CEPHFS"
    assert share.metadata == META
    assert share.size == 10
    assert share.availability_zone == "nova"
    body = openstack.requests_matching("POST", "/shares$")[0].body
    assert body == {
        "share": {"share_proto": "CEPHFS", "size": 10, "name": "home-abc", "metadata": META}
    }

    [location] = await client.export_locations(share_id)
    assert location["path"].startswith("10.0.0.1:6789,10.0.0.2:6789,10.0.0.3:6789:/volumes/")

    rule = await client.allow_access(share_id, "hub-user")
    assert (rule.state, rule.access_key, rule.access_level) == ("queued_to_apply", None, "rw")
    active = await client.wait_rule_active(share_id, rule.id)
    assert active.state == "active"
    assert active.access_key is not None
    assert len(active.access_key) == 40
    assert await client.access_rules(share_id) == [active]
    body = openstack.requests_matching("POST", "/action$")[0].body
    assert body == {
        "allow_access": {"access_type": "cephx", "access_to": "hub-user", "access_level": "rw"}
    }


async def test_create_passes_optional_fields(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    await client.create_share(
        name="g",
        size_gb=1,
        share_type="cephfs",
        share_network_id="net-1",
        availability_zone="nova",
        metadata={"k": "v"},
    )
    [stored] = openstack.shares()
    assert (stored["share_type"], stored["share_network_id"]) == ("cephfs", "net-1")


async def test_unknown_share_type_is_an_error(client: ManilaClient) -> None:
    with pytest.raises(StorageNotFoundError, match="Share type gold not found"):
        await client.create_share(
            name="g", size_gb=1, share_type="gold", share_network_id=None,
            availability_zone=None, metadata={},
        )  # fmt: skip


async def test_find_by_metadata(openstack: OpenStackServer, client: ManilaClient) -> None:
    mine = await create(client)
    await create(client, {"iris_jupyterhub_key": "user:other"})
    await create(client, {"unrelated": "x"})
    assert [s.id for s in await client.find_shares(META)] == [mine]
    query = openstack.requests_matching("GET", "/shares/detail$")[-1].query
    assert query == {"metadata": '{"iris_jupyterhub_key": "user:abc"}'}


async def test_get_missing_share(client: ManilaClient) -> None:
    with pytest.raises(StorageNotFoundError, match=r"404 .*could not be found"):
        await client.get_share("nope")


@pytest.mark.openstack(quota_shares=1)
async def test_share_count_quota(client: ManilaClient) -> None:
    await create(client)
    with pytest.raises(StorageQuotaError) as info:
        await create(client, {"iris_jupyterhub_key": "user:2"})
    assert "Maximum number of shares allowed (1) exceeded" in str(info.value)
    assert "413" in str(info.value)
    assert "storage quota of this hub's cloud project is used up" in info.value.user_message


@pytest.mark.openstack(quota_gigabytes=15)
async def test_share_gigabytes_quota(openstack: OpenStackServer, client: ManilaClient) -> None:
    await create(client)
    with pytest.raises(StorageQuotaError, match="gigabytes quota"):
        await create(client, {"iris_jupyterhub_key": "user:2"})
    assert len(openstack.requests_matching("POST", "/shares$")) == 2  # 413 is not retried


@pytest.mark.openstack(share_ready_polls=3)
async def test_share_error_is_reported_at_once(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.share_goes_to_error()
    share_id = await create(client)
    with pytest.raises(StorageStateError, match="status 'error'") as info:
        await client.wait_share_available(share_id)
    assert len(openstack.requests_matching("GET", f"/shares/{share_id}$")) == 3
    assert "administrator" in info.value.user_message


@pytest.mark.openstack(share_ready_polls=10**6)
async def test_share_wait_is_bounded(openstack: OpenStackServer, session: KeystoneSession) -> None:
    retry = RetryPolicy(poll_interval=0.01, max_poll_interval=0.02, wait_timeout=0.2)
    client = ManilaClient(session, retry=retry)
    share_id = await create(client)
    with pytest.raises(StorageUnavailableError, match=r"did not settle within 0\.2 s"):
        await client.wait_share_available(share_id)


async def test_rule_error_is_reported_at_once(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    share_id = await create(client)
    await client.wait_share_available(share_id)
    openstack.faults.rule_goes_to_error()
    rule = await client.allow_access(share_id, "hub-user")
    with pytest.raises(StorageStateError, match="state 'error'"):
        await client.wait_rule_active(share_id, rule.id)
    # queued_to_apply -> applying -> error: two polls, then no more requests
    assert len(openstack.requests_matching("GET", f"/share-access-rules/{rule.id}$")) == 2


async def test_allow_access_on_creating_share_is_a_clear_error(client: ManilaClient) -> None:
    share_id = await create(client)
    with pytest.raises(StorageError, match="Share status must be available"):
        await client.allow_access(share_id, "hub-user")


# ------------------------------------------------------------------- retries


async def test_transient_5xx_is_retried(openstack: OpenStackServer, client: ManilaClient) -> None:
    openstack.faults.fail_next("/shares/detail", 503, count=2)
    assert await client.find_shares(META) == []
    assert [r.status for r in openstack.requests_matching("GET", "/shares/detail")] == [
        503,
        503,
        200,
    ]


async def test_429_retry_after_is_honoured(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.fail_next("/shares/detail", 429, retry_after=0.01)
    assert await client.find_shares(META) == []
    assert len(openstack.requests_matching("GET", "/shares/detail")) == 2


async def test_persistent_5xx_gives_up(openstack: OpenStackServer, client: ManilaClient) -> None:
    openstack.faults.fail_next("/shares/detail", 500, count=100)
    with pytest.raises(StorageUnavailableError, match=r"after 3 attempts.*500") as info:
        await client.find_shares(META)
    assert info.value.retryable
    assert len(openstack.requests_matching("GET", "/shares/detail")) == FAST.attempts


async def test_timeouts_give_up(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack, timeout=0.2)
    client = ManilaClient(keystone, retry=FAST)
    await client.negotiate()
    openstack.faults.delay("/shares/detail", 1.0)
    try:
        with pytest.raises(StorageUnavailableError, match="ReadTimeout"):
            await client.find_shares(META)
    finally:
        await keystone.aclose()
    assert len(openstack.requests_matching("GET", "/shares/detail")) == FAST.attempts


async def test_unreachable(openstack: OpenStackServer, client: ManilaClient) -> None:
    await client.negotiate()
    openstack.faults.unreachable()
    with pytest.raises(StorageUnavailableError, match="ConnectError"):
        await client.find_shares(META)
    openstack.faults.reachable()
    assert await client.find_shares(META) == []


async def test_lost_create_response_makes_one_share(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.lose_response("/shares$", method="POST")
    share_id = await create(client)
    assert [s["id"] for s in openstack.shares()] == [share_id]
    assert len(openstack.requests_matching("POST", "/shares$")) == 1


async def test_create_timeout_makes_one_share(openstack: OpenStackServer) -> None:
    keystone = make_session(openstack, timeout=0.3)
    client = ManilaClient(keystone, retry=FAST)
    openstack.faults.delay("/shares$", 1.0, count=1, method="POST", after=True)
    try:
        share_id = await create(client)
    finally:
        await keystone.aclose()
    assert [s["id"] for s in openstack.shares()] == [share_id]
    assert len(openstack.requests_matching("POST", "/shares$")) == 1


async def test_create_refused_before_processing_is_sent_again(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.fail_next("/shares$", 500, method="POST")
    share_id = await create(client)
    assert [s["id"] for s in openstack.shares()] == [share_id]
    assert [r.status for r in openstack.requests_matching("POST", "/shares$")] == [500, 202]


async def test_lost_allow_access_response_makes_one_rule(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    share_id = await create(client)
    await client.wait_share_available(share_id)
    openstack.faults.lose_response("/action$")
    rule = await client.allow_access(share_id, "hub-user")
    assert [r["id"] for r in openstack.access_rules()] == [rule.id]
    assert len(openstack.requests_matching("POST", "/action$")) == 1


async def test_concurrent_requests_reauthenticate_once(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    await client.find_shares(META)
    openstack.faults.revoke_tokens()
    await asyncio.gather(*(client.find_shares(META) for _ in range(5)))
    assert openstack.tokens_issued == 2


async def test_token_revoked_mid_way(openstack: OpenStackServer, client: ManilaClient) -> None:
    share_id = await create(client)
    openstack.faults.revoke_tokens()
    assert (await client.get_share(share_id)).id == share_id
    assert openstack.tokens_issued == 2


async def test_no_delete_in_client() -> None:
    """The client module cannot delete: no DELETE verb, no deny_access action."""
    import inspect

    from iris_jupyterhub.storage import keystone, manila, shares

    for module in (keystone, manila, shares):
        source = inspect.getsource(module)
        assert '"DELETE"' not in source
        assert "deny_access" not in source.replace("no ``deny_access``", "")


async def test_keystone_outage_is_retried(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.fail_next("/v3/auth/tokens", 503, count=2)
    assert await client.find_shares(META) == []
    assert [r.status for r in openstack.requests_matching("POST", "/v3/auth/tokens")] == [
        503,
        503,
        201,
    ]


async def test_keystone_down_gives_up(openstack: OpenStackServer, client: ManilaClient) -> None:
    openstack.faults.fail_next("/v3/auth/tokens", 500, count=100)
    with pytest.raises(StorageUnavailableError, match="Keystone authentication failed after 3"):
        await client.find_shares(META)
    assert len(openstack.requests_matching("POST", "/v3/auth/tokens")) == FAST.attempts


@pytest.mark.openstack(quota_shares=0)
async def test_failures_are_logged_with_context(
    openstack: OpenStackServer, client: ManilaClient, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="iris_jupyterhub.storage"),
        pytest.raises(StorageQuotaError),
    ):
        await create(client)
    [post] = openstack.requests_matching("POST", "/shares$")
    messages = [r.getMessage() for r in caplog.records]
    debug = [m for m in messages if m.startswith("Manila GET") and "/shares/detail" not in m]
    assert debug  # every request is logged at debug (here: the version document)
    [failure] = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("iris_jupyterhub")
    ]
    assert post.path in failure
    assert "request id req-" in failure
    assert "Maximum number of shares allowed (0) exceeded" in failure


@pytest.mark.openstack(share_ready_polls=10**6, share_ready_seconds=0.05)
async def test_fake_share_settles_after_time(client: ManilaClient) -> None:
    share_id = await create(client)
    assert (await client.wait_share_available(share_id)).status == "available"
