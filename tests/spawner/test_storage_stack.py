"""Manila storage through the whole stack: IdP, hub (IRISSpawner + ManilaStorage), the fake
OpenStack server (in this process) and the Kubernetes stand-in.

One hub for the module; tests run in file order and build on each other's state (the
first spawn creates, later ones reuse), so each states what it expects to exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.kube import KubeStandIn
from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET, OpenStackServer
from devstack.stacks import KubeStack
from devstack.stub_server import stub_server
from tests.e2e.test_startup import start_failure

pytestmark = pytest.mark.e2e

NAMESPACE = "jhub"
STORAGE_KINDS = ("Secret", "PersistentVolume", "PersistentVolumeClaim")
PROFILES = [
    {"display_name": "Standard", "slug": "standard", "default": True},
    {"display_name": "Scratch only", "slug": "scratch", "storage": False},
]


@pytest.fixture(scope="module")
def stub_port() -> Iterator[int]:
    """One stub single-user server answering for every pod (the pods' content is not
    under test here, and real ``jupyterhub-singleuser`` processes take seconds each)."""
    with stub_server() as port:
        yield port


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory, stub_port: int) -> Iterator[KubeStandIn]:
    standin = KubeStandIn(tmp_path_factory.mktemp("kube"), run_servers=False, pod_ip="127.0.0.1")
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def openstack() -> Iterator[OpenStackServer]:
    with OpenStackServer(share_ready_polls=2) as server:
        yield server


@pytest.fixture(scope="module")
def kube_hub_config(openstack: OpenStackServer, stub_port: int) -> str:
    return f"""
c.JupyterHub.spawner_class = "iris"
c.IRISSpawner.port = {stub_port}
c.IRISSpawner.namespace = "{NAMESPACE}"
c.IRISSpawner.image = "quay.io/jupyter/base-notebook:latest"
c.IRISSpawner.cmd = ["jupyterhub-singleuser"]
c.IRISSpawner.args = []
c.IRISSpawner.start_timeout = 60
c.IRISSpawner.http_timeout = 60
c.IRISSpawner.profile_list = {PROFILES!r}
c.JupyterHub.allow_named_servers = True
c.ManilaStorage.enabled = True
c.ManilaStorage.auth_url = "{openstack.auth_url}"
c.ManilaStorage.region_name = "RegionOne"
c.ManilaStorage.share_size_gb = 5
c.ManilaStorage.group_shares = {{"iris/lsst": {{"size_gb": 50}}}}
c.ManilaStorage.poll_interval = 0.05
c.ManilaStorage.request_timeout = 2
c.ManilaStorage.retries = 2
c.ManilaStorage.prepare_timeout = 20
"""


@pytest.fixture(scope="module")
def ks(
    kube_stack_factory: Any, kube_hub_config: str, monkeypatch_module: pytest.MonkeyPatch
) -> KubeStack:
    stack: KubeStack = kube_stack_factory(kube_hub_config)
    for who in ("ada", "bob", "carol"):
        assert stack.login(who).status == 302
    return stack


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    # the credentials reach the hub as OpenStack environment variables, as in production
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OS_APPLICATION_CREDENTIAL_ID", APP_CRED_ID)
        mp.setenv("OS_APPLICATION_CREDENTIAL_SECRET", APP_CRED_SECRET)
        yield mp


def share_posts(openstack: OpenStackServer) -> int:
    return len(openstack.requests_matching("POST", r"/shares/?$"))


def rule_posts(openstack: OpenStackServer) -> int:
    return sum(
        1
        for r in openstack.requests_matching("POST", r"/action$")
        if isinstance(r.body, dict) and "allow_access" in r.body
    )


def storage_objects(ks: KubeStack) -> dict[str, list[str]]:
    kube = ks.kube
    return {
        "Secret": [o["metadata"]["name"] for o in kube.list_objects("secrets", NAMESPACE)],
        "PersistentVolume": [
            o["metadata"]["name"] for o in kube.list_objects("persistentvolumes")
        ],
        "PersistentVolumeClaim": [
            o["metadata"]["name"] for o in kube.list_objects("persistentvolumeclaims", NAMESPACE)
        ],
    }


def counts(ks: KubeStack) -> dict[str, int]:
    return {kind: len(names) for kind, names in storage_objects(ks).items()}


def spawn(ks: KubeStack, name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    r = ks.start_server(name, options or {})
    assert r.status_code in (201, 202), f"{r.text}\n{ks.hub.log_tail(30)}"
    ks.wait_ready(name)
    pod = ks.pod_manifests_of(name)[-1]
    ks.stop_server(name)
    return pod


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def mounts_of(pod: dict[str, Any]) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]}


def test_first_spawn_creates_one_share_rule_and_objects_and_mounts_the_home(
    ks: KubeStack, openstack: OpenStackServer
) -> None:
    before = counts(ks)
    pod = spawn(ks, "bbuilder")
    assert (share_posts(openstack), rule_posts(openstack)) == (1, 1)
    assert counts(ks) == {kind: before[kind] + 1 for kind in STORAGE_KINDS}
    spec = pod["spec"]
    claim = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
    assert mounts_of(pod)["/home/bbuilder"] == claim["name"]
    assert env_of(pod)["HOME"] == "/home/bbuilder"
    assert [c["name"] for c in spec["initContainers"]] == ["iris-storage-init"]
    # no fsGroup: kubelet must never re-group the files of a home (ceph-csi File policy)
    assert "fsGroup" not in spec["securityContext"]
    assert spec["securityContext"]["runAsGroup"] > 0
    assert spec["securityContext"]["runAsUser"] != 0  # only the init container is root
    assert not ks.kube.validation_errors()


def test_restart_reuses_everything(ks: KubeStack, openstack: OpenStackServer) -> None:
    before = (share_posts(openstack), rule_posts(openstack), counts(ks))
    first, second = ks.pod_manifests_of("bbuilder")[-1], spawn(ks, "bbuilder")
    assert (share_posts(openstack), rule_posts(openstack), counts(ks)) == before
    assert second["spec"]["volumes"] == first["spec"]["volumes"]


def test_group_share_is_mounted_for_members_only(
    ks: KubeStack, openstack: OpenStackServer
) -> None:
    shares_before = share_posts(openstack)
    ada = spawn(ks, "aresearcher")
    assert {"/home/aresearcher", "/shared/iris-lsst"} <= set(mounts_of(ada))
    assert share_posts(openstack) == shares_before + 2  # her home and the group's share
    bob = ks.pod_manifests_of("bbuilder")[-1]
    assert not any(path.startswith("/shared/") for path in mounts_of(bob))
    sizes = sorted(s["size"] for s in openstack.manila.shares.values())
    assert sizes == [5, 5, 50]
    assert not ks.kube.validation_errors()


def test_profile_without_storage(ks: KubeStack, openstack: OpenStackServer) -> None:
    before = len(openstack.requests)
    pod = spawn(ks, "bbuilder", {"profile": "scratch"})
    assert "initContainers" not in pod["spec"] or not pod["spec"]["initContainers"]
    assert "/home/bbuilder" not in mounts_of(pod)
    assert not [v for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v]
    assert len(openstack.requests) == before  # storage never even asked


def test_concurrent_named_servers_of_a_new_user_create_one_share(
    ks: KubeStack, openstack: OpenStackServer
) -> None:
    dora = ks.stack.user("bob")
    dora.update(login="dora", password="dora-pass", sub="d07a3c15-5e2b-4c8d-9f61-0b4e7a2c9d38")
    for claims in (dora["id_token"], dora["userinfo"]):
        claims["preferred_username"] = "ddora"
    ks.stack.idp.upsert_user("iam", dora)
    assert ks.login("dora").status == 302
    before = (share_posts(openstack), rule_posts(openstack), counts(ks))
    with ThreadPoolExecutor(2) as pool:
        responses = list(
            pool.map(lambda n: ks.start_server("ddora", {}, server_name=n), ("one", "two"))
        )
    assert all(r.status_code in (201, 202) for r in responses), [r.text for r in responses]
    for server in ("one", "two"):
        ks.wait_ready("ddora", server)
    pods = ks.pod_manifests_of("ddora")
    assert len(pods) == 2
    assert pods[0]["spec"]["volumes"] == pods[1]["spec"]["volumes"]
    assert share_posts(openstack) == before[0] + 1
    assert rule_posts(openstack) == before[1] + 1
    assert counts(ks) == {kind: before[2][kind] + 1 for kind in STORAGE_KINDS}
    for server in ("one", "two"):
        ks.stop_server("ddora", server)


def failed_spawn(ks: KubeStack, name: str) -> str:
    """Start a server that must fail before any pod; return the message the user gets."""
    pods = len(ks.kube.created_pods())
    r = ks.start_server(name, {"profile": "standard"})
    assert r.status_code >= 500, r.text
    assert len(ks.kube.created_pods()) == pods  # never a pod without its home
    assert ks.server_model(name) is None
    message: str = r.json()["message"]
    return message


def test_manila_unreachable_for_an_existing_user(
    ks: KubeStack, openstack: OpenStackServer
) -> None:
    openstack.faults.unreachable()
    try:
        message = failed_spawn(ks, "bbuilder")
    finally:
        openstack.faults.reachable()
    assert "home directory is unavailable" in message
    assert "files are safe" in message
    assert "Storage for bbuilder unavailable" in ks.hub.log_text()


def test_persistent_keystone_401(ks: KubeStack, openstack: OpenStackServer) -> None:
    openstack.faults.revoke_tokens()
    openstack.faults.fail_next(r"/v3/auth/tokens", 401, count=1000)
    try:
        message = failed_spawn(ks, "bbuilder")
    finally:
        openstack.faults.clear()
    assert "could not sign in to its storage service" in message
    assert "credentials rejected" in ks.hub.log_text()


def test_quota_exceeded(ks: KubeStack, openstack: OpenStackServer) -> None:
    openstack.faults.fail_next(r"/shares/?$", 413, method="POST")
    message = failed_spawn(ks, "cadmin")  # first spawn of cadmin: her share is created
    assert "quota" in message
    log = ks.hub.log_text()
    assert "413" in log
    assert "Injected fault." in log  # Manila's own message reaches the admin


def test_share_in_error(ks: KubeStack, openstack: OpenStackServer) -> None:
    openstack.faults.share_goes_to_error()
    openstack.clear_requests()
    message = failed_spawn(ks, "cadmin")
    assert "error state" in message
    assert len(openstack.requests) < 25  # bounded: no retry storm on a broken share
    assert re.search(r"Storage for cadmin failed: .*error", ks.hub.log_text())


def test_deleting_the_hub_user_deletes_no_storage(
    ks: KubeStack, openstack: OpenStackServer
) -> None:
    before = storage_objects(ks)
    shares_before = set(openstack.manila.shares)
    r = ks.hub.api("DELETE", "/users/bbuilder")
    assert r.status_code == 204, r.text
    assert storage_objects(ks) == before
    assert set(openstack.manila.shares) == shares_before
    assert openstack.destructive_requests == 0
    # (KubeSpawner's delete_forever deletes its own claim-<username>, never one of ours)
    assert not [d for d in ks.kube.deleted() if d["name"].startswith("iris-")]
    assert all(name.startswith("iris-") for names in before.values() for name in names)
    # the person logs in again: a new hub user, the same home
    assert ks.login("bob").status == 302
    ks.tokens.pop("bbuilder", None)  # the old user's token went with it
    posts = share_posts(openstack)
    spawn(ks, "bbuilder")
    assert share_posts(openstack) == posts
    assert storage_objects(ks) == before
    assert not ks.kube.validation_errors()


def test_a_bad_storage_configuration_stops_the_hub_naming_the_option(tmp_path: Path) -> None:
    config = """
c.JupyterHub.spawner_class = "iris"
c.ManilaStorage.enabled = True
c.ManilaStorage.csi_driver = "cephfs"
c.ManilaStorage.auth_url = "https://keystone.example.ac.uk/v3"
c.ManilaStorage.application_credential_id = "id"
c.ManilaStorage.application_credential_secret = "secret"
"""
    assert "ManilaStorage.ceph_cluster_id" in start_failure(tmp_path, config)
