"""``same_object``: reading an object back after HTTP 409 and deciding whether it is ours."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from iris_jupyterhub.storage.compare import same_object
from iris_jupyterhub.storage.manifests import (
    MANAGED_BY_LABEL,
    OWNER_ANNOTATION,
    SHARE_LABEL,
    persistent_volume_claim_manifest,
    persistent_volume_manifest,
    secret_manifest,
)

from .test_manifests import (
    BUILDERS,
    CEPHX_KEY,
    DRIVERS,
    SHARE_ID,
    decoded,
    group_share,
    home_share,
    settings,
)


def as_served(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` the way the API server returns it: server fields added, empties omitted."""
    served = copy.deepcopy(obj)
    meta = served["metadata"]
    meta.update(
        uid="5b0c3f4e-0000-4000-8000-000000000001",
        resourceVersion="12345",
        creationTimestamp="2026-11-25T21:00:00Z",
        managedFields=[{"manager": "iris-jupyterhub", "operation": "Update"}],
    )
    meta["labels"]["added-by-admin"] = "yes"
    meta["annotations"]["pv.kubernetes.io/bound-by-controller"] = "yes"
    spec: dict[str, Any] = served.get("spec") or {}
    if served["kind"] == "PersistentVolume":
        meta["finalizers"] = ["kubernetes.io/pv-protection"]
        spec.pop("storageClassName")  # "" is omitted by the server
        spec["claimRef"].update(uid="5b0c3f4e-0000-4000-8000-000000000002", resourceVersion="9")
        served["status"] = {"phase": "Bound"}
    if served["kind"] == "PersistentVolumeClaim":
        spec.pop("storageClassName")
        spec["resources"]["requests"]["storage"] = str(10 * 2**30)
        served["status"] = {"phase": "Bound", "capacity": {"storage": "10Gi"}}
    return served


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
@pytest.mark.parametrize("driver", DRIVERS)
def test_our_object_read_back_is_the_same(driver: str, builder: Any) -> None:
    desired = builder(home_share(), settings(driver))
    assert same_object(as_served(desired), desired) == []


def test_a_different_share_is_listed() -> None:
    existing = persistent_volume_manifest(home_share(), settings("manila"))
    desired = persistent_volume_manifest(home_share(share_id="other-share"), settings("manila"))
    diffs = same_object(as_served(existing), desired)
    assert f"spec.csi.volumeAttributes.shareID: '{SHARE_ID}' != 'other-share'" in diffs
    assert any(d.startswith(f"metadata.labels.{SHARE_LABEL}:") for d in diffs)
    assert any(d.startswith("spec.csi.volumeHandle:") for d in diffs)


def test_a_claim_for_someone_else_is_listed() -> None:
    existing = persistent_volume_claim_manifest(home_share(), settings("cephfs"))
    desired = persistent_volume_claim_manifest(
        home_share(owner_key="user:someone-else"), settings("cephfs")
    )
    diffs = same_object(as_served(existing), desired)
    assert any(d.startswith(f"metadata.annotations.{OWNER_ANNOTATION}:") for d in diffs)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_a_grown_share_or_new_extra_labels_are_no_difference(builder: Any) -> None:
    # An admin extended the share in Manila and the z2jh release labels changed since.
    existing = as_served(builder(group_share(share_size_gb=50), settings("cephfs")))
    desired = builder(group_share(), settings("cephfs", labels={"release": "jhub-2"}))
    assert same_object(existing, desired) == []


def test_secret_differences_never_show_values() -> None:
    existing = secret_manifest(home_share(access_key="AQOLDKEY=="), settings("cephfs"))
    desired = secret_manifest(home_share(), settings("cephfs"))
    diffs = same_object(as_served(existing), desired)
    assert diffs == ["data.userKey: differs"]
    assert "AQOLDKEY" not in repr(diffs)
    assert CEPHX_KEY not in repr(diffs)
    existing["data"]["extra"] = "eA=="
    assert "data: unexpected keys ['extra']" in same_object(existing, desired)


def test_secret_written_as_string_data_compares_equal() -> None:
    desired = secret_manifest(home_share(), settings("cephfs"))
    existing = {**copy.deepcopy(desired), "stringData": decoded(desired)}
    del existing["data"]
    assert same_object(existing, desired) == []


def test_either_access_id_key_names_the_same_rule() -> None:
    old = persistent_volume_manifest(home_share(), settings("manila"))
    new = persistent_volume_manifest(
        home_share(), settings("manila", manila_share_access_ids=True)
    )
    assert same_object(as_served(old), new) == []
    other_rule = persistent_volume_manifest(home_share(access_rule_id="r2"), settings("manila"))
    assert any("shareAccessIDs" in d for d in same_object(other_rule, new))


def test_extra_volume_attributes_and_other_kinds_are_listed() -> None:
    desired = persistent_volume_manifest(group_share(), settings("cephfs"))
    existing = as_served(desired)
    existing["spec"]["csi"]["volumeAttributes"]["mounter"] = "fuse"
    assert same_object(existing, desired) == [
        "spec.csi.volumeAttributes: unexpected keys ['mounter']"
    ]
    existing = as_served(desired)
    existing["spec"]["accessModes"] = ["ReadWriteOnce"]
    existing["metadata"]["labels"][MANAGED_BY_LABEL] = "someone-else"
    assert same_object(existing, desired) == [
        f"metadata.labels.{MANAGED_BY_LABEL}: 'someone-else' != 'iris-jupyterhub'",
        "spec.accessModes[0]: 'ReadWriteOnce' != 'ReadWriteMany'",
    ]
    claim = persistent_volume_claim_manifest(group_share(), settings("cephfs"))
    assert "kind: 'PersistentVolumeClaim' != 'PersistentVolume'" in same_object(claim, desired)
