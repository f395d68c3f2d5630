"""ensure_share against the fake OpenStack: idempotence, concurrency, inconsistent state."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devstack.openstack import OpenStackServer
from iris_jupyterhub.storage import (
    METADATA_CEPHX_ID,
    METADATA_KEY,
    METADATA_MANAGED,
    ManilaClient,
    ShareSpec,
    StorageConflictError,
    StorageQuotaError,
    StorageStateError,
    StorageUnavailableError,
    ensure_share,
)

_log = logging.getLogger("test.storage")


def spec(key: str = "user:abc", **overrides: object) -> ShareSpec:
    values: dict[str, object] = {
        "key": key,
        "name": f"home-{key.replace(':', '-')}",
        "size_gb": 10,
        "share_type": "cephfs",
        "share_network_id": None,
        "availability_zone": None,
        "cephx_id": "iris-hub",
        "metadata": {"iris_jupyterhub_user": "alice"},
    }
    values.update(overrides)
    return ShareSpec(**values)  # type: ignore[arg-type]


def posts(server: OpenStackServer, path_regex: str) -> int:
    return len(server.requests_matching("POST", path_regex))


async def test_creates_then_reuses(openstack: OpenStackServer, client: ManilaClient) -> None:
    first = await ensure_share(client, spec(), log=_log)
    assert first.created
    assert first.share.status == "available"
    assert first.share.metadata == {
        "iris_jupyterhub_user": "alice",
        METADATA_KEY: "user:abc",
        METADATA_MANAGED: "true",
        METADATA_CEPHX_ID: "iris-hub",
    }
    assert (first.rule.access_to, first.rule.state, first.rule.access_level) == (
        "iris-hub",
        "active",
        "rw",
    )
    assert first.rule.access_key
    assert first.export.monitors == openstack.manila.settings.monitors
    assert first.export.path.startswith(f"/volumes/_nogroup/{first.share.id}/")

    again = await ensure_share(client, spec(), log=_log)
    assert not again.created
    assert (again.share.id, again.rule, again.export) == (first.share.id, first.rule, first.export)
    assert len(openstack.shares()) == 1
    assert len(openstack.access_rules()) == 1
    assert posts(openstack, "/shares$") == 1
    assert posts(openstack, "/action$") == 1


async def test_concurrent_calls_same_key(openstack: OpenStackServer, client: ManilaClient) -> None:
    results = await asyncio.gather(*(ensure_share(client, spec(), log=_log) for _ in range(10)))
    assert {r.share.id for r in results} == {s["id"] for s in openstack.shares()}
    assert len(openstack.shares()) == 1
    assert len(openstack.access_rules()) == 1
    assert [r.created for r in results].count(True) == 1
    assert len({r.rule.access_key for r in results}) == 1
    assert posts(openstack, "/shares$") == 1
    assert posts(openstack, "/action$") == 1


async def test_concurrent_calls_different_keys(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    keys = [f"user:{i}" for i in range(5)]
    results = await asyncio.gather(*(ensure_share(client, spec(k), log=_log) for k in keys))
    assert sorted(r.share.metadata[METADATA_KEY] for r in results) == keys
    assert len(openstack.shares()) == 5
    assert len(openstack.access_rules()) == 5


async def test_two_shares_for_one_key_uses_oldest(
    openstack: OpenStackServer, client: ManilaClient, caplog: pytest.LogCaptureFixture
) -> None:
    metadata = spec().create_metadata()
    ids = []
    for name in ("first", "second"):
        share = await client.create_share(
            name=name, size_gb=1, share_type=None, share_network_id=None,
            availability_zone=None, metadata=metadata,
        )  # fmt: skip
        ids.append(share.id)
    with caplog.at_level(logging.WARNING, logger="test.storage"):
        ready = await ensure_share(client, spec(), log=_log)
    assert ready.share.id == ids[0]
    assert not ready.created
    [warning] = [r.getMessage() for r in caplog.records if "shares for key" in r.getMessage()]
    assert ids[0] in warning
    assert ids[1] in warning
    assert len(openstack.shares()) == 2  # nothing deleted


async def test_share_in_error_is_never_replaced(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.share_goes_to_error()
    for _ in range(2):
        with pytest.raises(StorageStateError, match="status 'error'"):
            await ensure_share(client, spec(), log=_log)
    assert posts(openstack, "/shares$") == 1
    assert len(openstack.shares()) == 1
    # creating -> error after two polls; the second call sees 'error' in the listing, no poll
    assert len(openstack.requests_matching("GET", r"/shares/[0-9a-f-]+$")) == 2


async def test_rule_in_error_is_never_replaced(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.rule_goes_to_error()
    for _ in range(2):
        with pytest.raises(StorageStateError, match="state 'error'"):
            await ensure_share(client, spec(), log=_log)
    assert posts(openstack, "/action$") == 1
    assert len(openstack.access_rules()) == 1


async def test_existing_rule_is_reused(openstack: OpenStackServer, client: ManilaClient) -> None:
    first = await ensure_share(client, spec(), log=_log)
    other = await ensure_share(client, spec("group:physics", cephx_id="iris-hub"), log=_log)
    assert other.share.id != first.share.id
    assert posts(openstack, "/action$") == 2  # one rule per share, same cephx id


async def test_read_only_rule_is_a_conflict(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    share = await client.create_share(
        name="x", size_gb=1, share_type=None, share_network_id=None,
        availability_zone=None, metadata=spec().create_metadata(),
    )  # fmt: skip
    await client.wait_share_available(share.id)
    await client.allow_access(share.id, "iris-hub", "ro")
    with pytest.raises(StorageConflictError, match="access level 'ro'"):
        await ensure_share(client, spec(), log=_log)
    assert len(openstack.access_rules()) == 1


async def test_unparsable_export_is_a_conflict(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    ready = await ensure_share(client, spec(), log=_log)
    openstack.set_export_locations(ready.share.id, [{"path": "nfs-server:exports/x"}])
    with pytest.raises(StorageConflictError, match="no usable CephFS export location"):
        await ensure_share(client, spec(), log=_log)


@pytest.mark.openstack(quota_gigabytes=5)
async def test_quota_reaches_the_caller(client: ManilaClient) -> None:
    with pytest.raises(StorageQuotaError) as info:
        await ensure_share(client, spec(), log=_log)
    assert "gigabytes quota" in str(info.value)
    assert "quota" in info.value.user_message


async def test_lost_responses_during_ensure(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.lose_response("/shares$")
    openstack.faults.lose_response("/action$")
    ready = await ensure_share(client, spec(), log=_log)
    assert ready.created
    assert [s["id"] for s in openstack.shares()] == [ready.share.id]
    assert [r["id"] for r in openstack.access_rules()] == [ready.rule.id]


async def test_unreachable_is_unavailable(
    openstack: OpenStackServer, client: ManilaClient
) -> None:
    openstack.faults.unreachable()
    try:
        with pytest.raises(StorageUnavailableError) as info:
            await ensure_share(client, spec(), log=_log)
    finally:
        openstack.faults.reachable()
    assert "not responding" in info.value.user_message
    ready = await ensure_share(client, spec(), log=_log)
    assert ready.created
