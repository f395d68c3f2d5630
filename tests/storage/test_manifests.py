"""Secret, static PersistentVolume and claim of a share, for both CSI drivers; RBAC."""

from __future__ import annotations

import ast
import base64
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from devstack.kube_checks import REPO_ROOT, validate_manifest
from iris_jupyterhub.storage import manifests as manifests_module
from iris_jupyterhub.storage import volumes as volumes_module
from iris_jupyterhub.storage.manifests import (
    CEPH_CSI,
    MANAGED_BY_LABEL,
    MANILA_CSI,
    OWNER_ANNOTATION,
    SHARE_LABEL,
    CsiSettings,
    MountedShare,
    object_name_for,
    persistent_volume_claim_manifest,
    persistent_volume_manifest,
    secret_manifest,
)

RBAC_YAML = REPO_ROOT / "helm" / "storage-rbac.yaml"
SHARE_ID = "2f1a7c52-3c1e-4f8e-9b7e-0d7f1a2b3c4d"
RULE_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MANILA_SECRET = {
    "os-authURL": "https://keystone.example.ac.uk:5000/v3",
    "os-region": "RegionOne",
    "os-applicationCredentialID": "0123456789abcdef",
    "os-applicationCredentialSecret": "s3cr3t-app-cred",
}
CEPHX_KEY = "AQBv0qJlAAAAABAAx3wGZ9m6mN1w0q7c0p4b2Q=="


def home_share(**changes: Any) -> MountedShare:
    key = "user:5d41402abc4b2a76b9719d911017c592"
    share = MountedShare(
        kind="home",
        owner_key=key,
        object_name=object_name_for("home", key, "jhub"),
        share_id=SHARE_ID,
        share_size_gb=10,
        access_rule_id=RULE_ID,
        cephx_id="client.iris-jhub",
        access_key=CEPHX_KEY,
        monitors=("10.0.0.1:6789", "10.0.0.2:6789"),
        root_path=f"/volumes/_nogroup/{SHARE_ID}/b1c2d3e4",
        mount_path="/home/jovyan",
        uid=2000001,
        gid=2000001,
    )
    return dataclasses.replace(share, **changes)


def group_share(**changes: Any) -> MountedShare:
    key = "group:vo.iris.ac.uk/lsst"
    share = home_share(
        kind="group",
        owner_key=key,
        object_name=object_name_for("group", key, "jhub"),
        share_id="7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9",
        share_size_gb=100,
        mount_path="/shared/lsst",
        uid=None,
        gid=3000002,
    )
    return dataclasses.replace(share, **changes)


def settings(driver: str, **changes: Any) -> CsiSettings:
    base = CsiSettings(
        driver=driver,
        namespace="jhub",
        ceph_cluster_id="b9127830-b0cc-4e34-aa47-9d1a2e9949a8" if driver == "cephfs" else "",
        ceph_fs_name="cephfs" if driver == "cephfs" else "",
        manila_secret=MANILA_SECRET if driver == "manila" else None,
        labels={"app": "jupyterhub", "release": "jhub"},
    )
    return dataclasses.replace(base, **changes)


DRIVERS = ["manila", "cephfs"]
SHARES = {"home": home_share, "group": group_share}
BUILDERS = [secret_manifest, persistent_volume_manifest, persistent_volume_claim_manifest]


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


# --------------------------------------------------------------------------------------
# Schema validity and content
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
@pytest.mark.parametrize("kind", sorted(SHARES))
@pytest.mark.parametrize("driver", DRIVERS)
def test_every_object_is_valid_kubernetes(driver: str, kind: str, builder: Any) -> None:
    for read_only in (False, True):
        obj = builder(SHARES[kind](read_only=read_only), settings(driver))
        assert validate_manifest(obj) == []
        assert obj["metadata"]["name"] == SHARES[kind]().object_name
        assert obj["metadata"]["labels"][MANAGED_BY_LABEL] == "iris-jupyterhub"
        assert obj["metadata"]["labels"]["release"] == "jhub"
        assert obj["metadata"]["annotations"][OWNER_ANNOTATION] == SHARES[kind]().owner_key


def test_labels_are_label_safe_and_identify_the_owner() -> None:
    home, group = home_share(), group_share()
    for share in (home, group):
        labels = secret_manifest(share, settings("cephfs"))["metadata"]["labels"]
        assert labels[SHARE_LABEL] == share.share_id
        assert all(len(v) <= 63 for v in labels.values())
    home_labels = persistent_volume_manifest(home, settings("manila"))["metadata"]["labels"]
    group_labels = persistent_volume_manifest(group, settings("manila"))["metadata"]["labels"]
    assert home_labels["iris-jupyterhub/owner-hash"] != group_labels["iris-jupyterhub/owner-hash"]
    assert home_labels["iris-jupyterhub/storage-kind"] == "home"
    assert group_labels["iris-jupyterhub/storage-kind"] == "group"


def test_manila_secret_carries_the_openstack_credentials_only() -> None:
    secret = secret_manifest(home_share(), settings("manila"))
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["namespace"] == "jhub"
    assert "stringData" not in secret
    assert decoded(secret) == MANILA_SECRET
    assert CEPHX_KEY not in json.dumps(secret)


def test_cephfs_secret_carries_the_cephx_identity() -> None:
    secret = secret_manifest(home_share(), settings("cephfs"))
    assert decoded(secret) == {"userID": "iris-jhub", "userKey": CEPHX_KEY}
    unprefixed = secret_manifest(home_share(cephx_id="iris-jhub"), settings("cephfs"))
    assert decoded(unprefixed) == decoded(secret)


def test_access_key_is_not_in_reprs() -> None:
    assert CEPHX_KEY not in repr(home_share())
    assert MANILA_SECRET["os-applicationCredentialSecret"] not in repr(settings("manila"))


@pytest.mark.parametrize("driver", DRIVERS)
def test_volume_and_claim_are_bound_to_each_other(driver: str) -> None:
    share = group_share()
    pv = persistent_volume_manifest(share, settings(driver))
    pvc = persistent_volume_claim_manifest(share, settings(driver))
    claim_ref = pv["spec"]["claimRef"]
    assert (claim_ref["kind"], claim_ref["namespace"], claim_ref["name"]) == (
        "PersistentVolumeClaim",
        pvc["metadata"]["namespace"],
        pvc["metadata"]["name"],
    )
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert "namespace" not in pv["metadata"]  # cluster-scoped
    for key in ("accessModes", "storageClassName", "volumeMode"):
        assert pv["spec"][key] == pvc["spec"][key]
    assert pv["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pv["spec"]["storageClassName"] == ""
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["capacity"]["storage"] == f"{share.share_size_gb}Gi"
    assert pvc["spec"]["resources"]["requests"]["storage"] == pv["spec"]["capacity"]["storage"]
    secret = secret_manifest(share, settings(driver))
    ref = pv["spec"]["csi"]["nodeStageSecretRef"]
    assert ref == {
        "name": secret["metadata"]["name"],
        "namespace": secret["metadata"]["namespace"],
    }


def test_manila_volume_attributes() -> None:
    share = home_share()
    csi = persistent_volume_manifest(share, settings("manila"))["spec"]["csi"]
    assert csi["driver"] == MANILA_CSI
    assert csi["volumeAttributes"] == {"shareID": SHARE_ID, "shareAccessID": RULE_ID}
    assert csi["nodePublishSecretRef"] == csi["nodeStageSecretRef"]
    assert SHARE_ID in csi["volumeHandle"]
    assert RULE_ID in csi["volumeHandle"]


def test_manila_share_access_ids_replaces_the_old_key() -> None:
    # cloud-provider-openstack 1.35/1.36 reject a volume that has both keys.
    csi_settings = settings("manila", manila_share_access_ids=True, mounter="kernel")
    csi = persistent_volume_manifest(home_share(), csi_settings)["spec"]["csi"]
    assert csi["volumeAttributes"] == {
        "shareID": SHARE_ID,
        "shareAccessIDs": RULE_ID,
        "cephfs-mounter": "kernel",
    }


def test_cephfs_volume_attributes() -> None:
    share = group_share(read_only=True)
    csi = persistent_volume_manifest(share, settings("cephfs"))["spec"]["csi"]
    assert csi["driver"] == CEPH_CSI
    assert csi["volumeAttributes"] == {
        "clusterID": "b9127830-b0cc-4e34-aa47-9d1a2e9949a8",
        "staticVolume": "true",
        "rootPath": share.root_path,
        "fsName": "cephfs",
    }
    assert "nodePublishSecretRef" not in csi
    assert csi["readOnly"] is True
    assert not csi["volumeHandle"].startswith("0001-")  # never a ceph-csi encoded id
    no_fs = persistent_volume_manifest(share, settings("cephfs", ceph_fs_name=""))
    assert "fsName" not in no_fs["spec"]["csi"]["volumeAttributes"]


def test_volume_handles_differ_per_share() -> None:
    handles = {
        persistent_volume_manifest(share, settings("cephfs"))["spec"]["csi"]["volumeHandle"]
        for share in (home_share(), group_share(), home_share(access_rule_id="other-rule"))
    }
    assert len(handles) == 3


# --------------------------------------------------------------------------------------
# Refused settings and shares
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_cephfs_needs_a_cluster_id(builder: Any) -> None:
    with pytest.raises(ValueError, match=r"ManilaStorage\.ceph_cluster_id"):
        builder(home_share(), settings("cephfs", ceph_cluster_id=""))


@pytest.mark.parametrize(
    ("changes", "trait"),
    [
        ({"driver": "nfs"}, "csi_driver"),
        ({"namespace": "Not_A_Namespace"}, "namespace"),
        ({"mounter": "rbd-nbd"}, "mounter"),
        ({"labels": {MANAGED_BY_LABEL: "someone-else"}}, "labels"),
        ({"labels": {"release": "not a label value"}}, "labels"),
        ({"manila_secret": None}, "manila_secret"),
        ({"manila_secret": {**MANILA_SECRET, "password": "x"}}, "manila_secret"),
        ({"manila_secret": {**MANILA_SECRET, "os-TLSInsecure": "yes"}}, "manila_secret"),
    ],
)
def test_bad_settings_name_the_trait(changes: dict[str, Any], trait: str) -> None:
    with pytest.raises(ValueError, match=rf"ManilaStorage\.{trait}:"):
        persistent_volume_manifest(
            home_share(), dataclasses.replace(settings("manila"), **changes)
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "scratch"},
        {"object_name": "Iris_Home"},
        {"object_name": "x" * 64},
        {"share_id": ""},
        {"access_rule_id": ""},  # Manila CSI >= 1.35 would kill its node plugin
        {"share_size_gb": 0},
        {"cephx_id": "client."},
        {"access_key": ""},
        {"root_path": "volumes/x"},
        {"mount_path": "/home/../etc"},
        {"mount_path": "/"},
        {"mount_path": "relative"},
        {"mount_path": "/home/jovyan/"},
        {"uid": None},
        {"uid": 0},
        {"gid": 0},
        {"gid": True},
    ],
)
def test_bad_home_shares_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="MountedShare"):
        home_share(**changes)


def test_group_share_is_root_owned() -> None:
    with pytest.raises(ValueError, match="uid must be None"):
        group_share(uid=2000001)


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def test_object_names_are_readable() -> None:
    name = object_name_for("group", "group:vo.iris.ac.uk/lsst", "jhub")
    assert name.startswith("iris-group-jhub-vo-iris-ac-uk-lsst-")
    assert object_name_for("home", "user:abc") == object_name_for("home", "user:abc", "")
    with pytest.raises(ValueError, match="kind"):
        object_name_for("scratch", "user:abc")
    with pytest.raises(ValueError, match="key"):
        object_name_for("home", "")


keys = st.text(min_size=1, max_size=300)
hints = st.text(max_size=80)


@given(kind=st.sampled_from(["home", "group"]), key=keys, hint=hints)
def test_object_names_are_deterministic_dns_labels(kind: str, key: str, hint: str) -> None:
    name = object_name_for(kind, key, hint)
    assert name == object_name_for(kind, key, hint)
    assert len(name) <= 63
    assert DNS_LABEL.match(name)
    assert name.startswith(f"iris-{kind}-")


@given(key=keys, other=keys, hint=hints, other_hint=hints)
def test_object_names_differ_for_different_owners_or_hubs(
    key: str, other: str, hint: str, other_hint: str
) -> None:
    if (key, hint) != (other, other_hint):
        assert object_name_for("home", key, hint) != object_name_for("home", other, other_hint)
    assert object_name_for("home", key, hint) != object_name_for("group", key, hint)


def test_long_keys_sharing_a_prefix_get_distinct_names() -> None:
    prefix = "group:" + "a" * 100
    names = {object_name_for("group", f"{prefix}{i}", "jhub") for i in range(1000)}
    assert len(names) == 1000


# --------------------------------------------------------------------------------------
# RBAC manifest, and no deleting anywhere
# --------------------------------------------------------------------------------------


def rbac_documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(RBAC_YAML.read_text()) if doc]


def test_rbac_manifest_is_valid_kubernetes() -> None:
    docs = rbac_documents()
    assert [d["kind"] for d in docs] == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    for doc in docs:
        assert validate_manifest(doc) == [], doc["kind"]


def test_rbac_grants_create_and_read_only() -> None:
    """Exactly the verbs iris_jupyterhub.storage.kube.ensure_object uses: it reads an
    object by name (get) and creates it when missing (create); it never lists or watches
    storage objects, so neither is granted."""
    docs = {d["kind"]: d for d in rbac_documents()}
    granted = {
        (kind, resource, verb)
        for kind in ("ClusterRole", "Role")
        for rule in docs[kind]["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if rule["apiGroups"] == [""]
    }
    verbs = ("get", "create")
    assert granted == {
        *(("ClusterRole", "persistentvolumes", v) for v in verbs),
        *(("Role", r, v) for r in ("secrets", "persistentvolumeclaims") for v in verbs),
    }
    role_ns = docs["Role"]["metadata"]["namespace"]
    for binding, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        assert docs[binding]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": docs[role]["metadata"]["name"],
        }
        assert docs[binding]["subjects"] == [
            {"kind": "ServiceAccount", "name": "hub", "namespace": role_ns}
        ]
    assert docs["RoleBinding"]["metadata"]["namespace"] == role_ns


def _code_strings(path: Path) -> set[str]:
    """Every string constant in a module except docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    }


def test_nothing_deletes() -> None:
    assert not re.search(r"delet", RBAC_YAML.read_text(), re.IGNORECASE)
    for module in (manifests_module, volumes_module):
        strings = _code_strings(Path(str(module.__file__)))
        assert not [s for s in strings if re.search(r"delet|patch|update", s, re.IGNORECASE)]
    for driver in DRIVERS:
        for builder in BUILDERS:
            text = json.dumps(builder(group_share(), settings(driver)))
            assert "delete" not in text.lower()
