"""``StorageService.prepare`` against the fake OpenStack server and the Kubernetes stand-in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
from traitlets.config import Config

from devstack.kube import KubeStandIn
from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET, OpenStackServer
from iris_jupyterhub.storage import (
    StorageConflictError,
    StorageQuotaError,
    StorageStateError,
    StorageUnavailableError,
)
from iris_jupyterhub.storage.config import ManilaStorage
from iris_jupyterhub.storage.manifests import object_name_for
from iris_jupyterhub.storage.service import (
    HOME_UNAVAILABLE,
    StorageOwner,
    StorageService,
    home_key,
    owner_from_auth_state,
)

NAMESPACE = "jhub"
STORAGE_KINDS = ("Secret", "PersistentVolume", "PersistentVolumeClaim")
ISSUER = "https://iam.example.ac.uk/"
ADA = StorageOwner(ISSUER, "sub-ada", "ada", 2000001, 2000001, (("iris/lsst", 3000002),))
BOB = StorageOwner(ISSUER, "sub-bob", "bob", 2000002, 2000002, (("iris/lsst", 3000002),))
EVE = StorageOwner(ISSUER, "sub-eve", "eve", 2000003, 2000003, (("dune", 3000009),))
log = logging.getLogger("test-storage")


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandIn]:
    standin = KubeStandIn(tmp_path_factory.mktemp("kube"), kubelet=False)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def openstack() -> Iterator[OpenStackServer]:
    with OpenStackServer(share_ready_polls=1) as server:
        yield server


@pytest.fixture
async def api(kube: KubeStandIn) -> AsyncIterator[CoreV1Api]:
    configuration = Configuration(host=kube.url)
    async with ApiClient(configuration) as client:
        yield CoreV1Api(client)


def settings_for(openstack: OpenStackServer, **extra: Any) -> ManilaStorage:
    config = Config()
    values = {
        "enabled": True,
        "auth_url": openstack.auth_url,
        "application_credential_id": APP_CRED_ID,
        "application_credential_secret": APP_CRED_SECRET,
        "region_name": "RegionOne",
        "share_size_gb": 5,
        "poll_interval": 0.05,
        "request_timeout": 5.0,
        "prepare_timeout": 20.0,
        "group_shares": {"iris/lsst": {"size_gb": 50}},
        # every test gets objects of its own: names include the hub hint
        "hub_name": f"t{openstack.port}",
        **extra,
    }
    for name, value in values.items():
        setattr(config.ManilaStorage, name, value)
    return ManilaStorage(config=config)


@pytest.fixture
async def service(openstack: OpenStackServer) -> AsyncIterator[StorageService]:
    svc = StorageService(settings_for(openstack), log)
    yield svc
    await svc.aclose()


def posts(openstack: OpenStackServer, what: str) -> int:
    if what == "share":
        return len(openstack.requests_matching("POST", r"/shares/?$"))
    return sum(
        1
        for r in openstack.requests_matching("POST", r"/action$")
        if isinstance(r.body, dict) and "allow_access" in r.body
    )


def objects_of(kube: KubeStandIn, hint: str) -> dict[str, list[dict[str, Any]]]:
    """This test's Secret/PV/PVC (by the hub hint in their names)."""
    found = {
        "Secret": kube.list_objects("secrets", NAMESPACE),
        "PersistentVolume": kube.list_objects("persistentvolumes"),
        "PersistentVolumeClaim": kube.list_objects("persistentvolumeclaims", NAMESPACE),
    }
    return {
        kind: [o for o in items if f"-{hint}-" in o["metadata"]["name"]]
        for kind, items in found.items()
    }


async def test_first_spawn_creates_one_of_each_and_the_next_reuses_them(
    service: StorageService, openstack: OpenStackServer, kube: KubeStandIn, api: CoreV1Api
) -> None:
    hint = service.settings.hub_name
    first = await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert (posts(openstack, "share"), posts(openstack, "rule")) == (1, 1)
    share = next(iter(openstack.manila.shares.values()))
    assert share["size"] == 5
    assert share["metadata"]["iris_jupyterhub_key"] == home_key(ISSUER, "sub-eve")
    assert "eve" not in share["metadata"]["iris_jupyterhub_key"]  # never the user name
    objects = objects_of(kube, hint)
    assert {kind: len(items) for kind, items in objects.items()} == dict.fromkeys(STORAGE_KINDS, 1)
    assert not kube.validation_errors()
    pv = objects["PersistentVolume"][0]
    assert pv["spec"]["csi"]["volumeAttributes"]["shareID"] == share["id"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    # the pod: one volume, mounted at the home, the ownership init container
    assert [m["mountPath"] for m in first.volume_mounts] == ["/home/eve"]
    assert (
        first.volumes[0]["persistentVolumeClaim"]["claimName"]
        == (objects["PersistentVolumeClaim"][0]["metadata"]["name"])
    )
    assert [c["name"] for c in first.init_containers] == ["iris-storage-init"]
    assert "2000003" in first.init_containers[0]["command"][-1]

    again = await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert again == first
    assert (posts(openstack, "share"), posts(openstack, "rule")) == (1, 1)
    assert {k: len(v) for k, v in objects_of(kube, hint).items()} == dict.fromkeys(
        STORAGE_KINDS, 1
    )
    assert openstack.destructive_requests == 0
    assert not [d for d in kube.deleted() if d["kind"] in STORAGE_KINDS]


async def test_the_home_follows_the_identity_not_the_name(
    service: StorageService, openstack: OpenStackServer, api: CoreV1Api
) -> None:
    await service.prepare(EVE, api=api, namespace=NAMESPACE)
    renamed = StorageOwner(ISSUER, "sub-eve", "eve2", EVE.uid, EVE.gid, EVE.groups)
    pod = await service.prepare(renamed, api=api, namespace=NAMESPACE)
    assert posts(openstack, "share") == 1  # same identity, same share
    assert pod.volume_mounts[0]["mountPath"] == "/home/eve2"
    namesake = StorageOwner("https://other-idp.example/", "sub-eve", "eve", 2000004, 2000004)
    await service.prepare(namesake, api=api, namespace=NAMESPACE)
    assert posts(openstack, "share") == 2  # same name, another person: another share


async def test_concurrent_spawns_of_one_user_create_one_share(
    service: StorageService, openstack: OpenStackServer, kube: KubeStandIn, api: CoreV1Api
) -> None:
    results = await asyncio.gather(
        *(service.prepare(EVE, api=api, namespace=NAMESPACE) for _ in range(4))
    )
    assert all(r == results[0] for r in results)
    assert (posts(openstack, "share"), posts(openstack, "rule")) == (1, 1)
    objects = objects_of(kube, service.settings.hub_name)
    assert {k: len(v) for k, v in objects.items()} == dict.fromkeys(STORAGE_KINDS, 1)


async def test_group_share_is_created_once_and_mounted_for_members_only(
    service: StorageService, openstack: OpenStackServer, kube: KubeStandIn, api: CoreV1Api
) -> None:
    ada = await service.prepare(ADA, api=api, namespace=NAMESPACE)
    assert [m["mountPath"] for m in ada.volume_mounts] == ["/home/ada", "/shared/iris-lsst"]
    bob = await service.prepare(BOB, api=api, namespace=NAMESPACE)
    assert bob.volume_mounts[1] == ada.volume_mounts[1]
    eve = await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert [m["mountPath"] for m in eve.volume_mounts] == ["/home/eve"]
    # three homes and one group share; one rule each
    assert (posts(openstack, "share"), posts(openstack, "rule")) == (4, 4)
    sizes = sorted(s["size"] for s in openstack.manila.shares.values())
    assert sizes == [5, 5, 5, 50]
    objects = objects_of(kube, service.settings.hub_name)
    assert {k: len(v) for k, v in objects.items()} == dict.fromkeys(STORAGE_KINDS, 4)
    assert not kube.validation_errors()
    # the group's root goes to root:<group gid>, setgid and group-writable
    script = bob.init_containers[0]["command"][-1]
    assert "0 3000002 2770" in script


async def test_quota_exceeded_is_a_quota_error_with_manilas_message(
    service: StorageService, openstack: OpenStackServer, api: CoreV1Api
) -> None:
    openstack.faults.fail_next(r"/shares/?$", 413, method="POST")
    with pytest.raises(StorageQuotaError) as info:
        await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert "quota" in info.value.user_message
    assert "413" in info.value.detail


async def test_a_share_in_error_fails_clearly_with_bounded_requests(
    service: StorageService, openstack: OpenStackServer, api: CoreV1Api
) -> None:
    openstack.faults.share_goes_to_error()
    with pytest.raises(StorageStateError) as info:
        await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert "error state" in info.value.user_message
    assert len(openstack.requests) < 20
    with pytest.raises(StorageStateError):  # found again, still in error: never re-created
        await service.prepare(EVE, api=api, namespace=NAMESPACE)
    assert posts(openstack, "share") == 1
    assert openstack.destructive_requests == 0


async def test_manila_unreachable_says_the_home_is_unavailable(
    openstack: OpenStackServer, api: CoreV1Api
) -> None:
    service = StorageService(settings_for(openstack, retries=2, request_timeout=1.0), log)
    try:
        await service.prepare(EVE, api=api, namespace=NAMESPACE)
        openstack.unreachable()
        with pytest.raises(StorageUnavailableError) as info:
            await service.prepare(EVE, api=api, namespace=NAMESPACE)
        assert info.value.user_message == HOME_UNAVAILABLE
    finally:
        openstack.reachable()
        await service.aclose()


async def test_a_stalled_manila_is_cut_off_by_prepare_timeout(
    openstack: OpenStackServer, api: CoreV1Api
) -> None:
    service = StorageService(settings_for(openstack, prepare_timeout=0.5), log)
    openstack.faults.delay(r"/shares", 3.0)
    try:
        with pytest.raises(StorageUnavailableError) as info:
            await service.prepare(EVE, api=api, namespace=NAMESPACE)
        assert "not ready after 0.5s" in info.value.detail
        assert info.value.user_message == HOME_UNAVAILABLE
        # the spawner's tighter bound (from its start_timeout) wins over prepare_timeout
        patient = StorageService(settings_for(openstack, prepare_timeout=60), log)
        with pytest.raises(StorageUnavailableError) as info:
            await patient.prepare(EVE, api=api, namespace=NAMESPACE, timeout=0.4)
        assert "not ready after 0.4s" in info.value.detail
        await patient.aclose()
    finally:
        openstack.faults.clear()
        await service.aclose()


async def test_a_different_object_under_our_name_is_a_conflict_never_changed(
    service: StorageService, kube: KubeStandIn, api: CoreV1Api
) -> None:
    owner = StorageOwner(ISSUER, "sub-conflict", "conflict", 2000006, 2000006)
    name = object_name_for("home", home_key(ISSUER, "sub-conflict"), service.settings.hub_name)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"userKey": "bm90IG91cnM="},
    }
    kube.api("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", json=secret).raise_for_status()
    with pytest.raises(StorageConflictError) as info:
        await service.prepare(owner, api=api, namespace=NAMESPACE)
    assert name in info.value.detail
    assert "never changes or deletes" in info.value.detail
    assert "hub administrators" in info.value.user_message
    assert kube.get_object("secrets", NAMESPACE, name)["data"] == secret["data"]  # untouched
    assert not [d for d in kube.deleted() if d["kind"] in STORAGE_KINDS]


def test_owner_from_auth_state() -> None:
    state = {
        "identity": {"issuer": ISSUER, "subject": "sub-ada"},
        "posix": {
            "uid": 2000001,
            "gid": 2000001,
            "username": "ada",
            "groups": [
                {"name": "ada", "gid": 2000001, "canonical": None},
                {"name": "iris-lsst", "gid": 3000002, "canonical": "iris/lsst"},
            ],
        },
    }
    assert owner_from_auth_state(state) == ADA
    for broken in ({}, {"identity": state["identity"]}, {"posix": state["posix"]}):
        with pytest.raises(Exception, match="auth_state") as info:
            owner_from_auth_state(broken)
        assert "log out and log in again" in info.value.user_message  # type: ignore[attr-defined]


def test_keys_are_opaque_and_stable() -> None:
    assert home_key(ISSUER, "sub-ada") == home_key(ISSUER, "sub-ada")
    assert home_key(ISSUER, "sub-ada") != home_key(ISSUER + "x", "sub-ada")
    assert home_key(ISSUER, "sub-ada").startswith("user:")


async def test_the_cluster_not_answering_is_named_not_blamed_on_the_storage_service(
    openstack: OpenStackServer,
) -> None:
    """Manila answers but the Kubernetes API does not: the researcher reads that the cluster
    did not answer (docs/admin/troubleshooting.md), not that the storage service did."""
    from devstack.idp import free_port

    service = StorageService(settings_for(openstack, request_timeout=1.0), log)
    configuration = Configuration(host=f"http://127.0.0.1:{free_port()}")  # nothing listens
    try:
        async with ApiClient(configuration) as client:
            with pytest.raises(StorageUnavailableError) as info:
                await service.prepare(EVE, api=CoreV1Api(client), namespace=NAMESPACE)
    finally:
        await service.aclose()
    assert "the cluster did not answer" in info.value.user_message
    assert info.value.user_message != HOME_UNAVAILABLE
    assert posts(openstack, "share") == 1  # the share itself was made
