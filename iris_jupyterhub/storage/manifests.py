"""Kubernetes objects for a Manila CephFS share: Secret, static PersistentVolume and claim.

Pure builders: plain data in, Kubernetes API objects (dicts) out, no I/O. The hub creates
the three objects of a share with the ``create`` verb only (see ``helm/storage-rbac.yaml``);
when one already exists (HTTP 409) it reads it back and
:func:`~iris_jupyterhub.storage.compare.same_object` says whether it is ours and
equivalent. Nothing here updates or deletes anything.

Two CSI drivers can mount a Manila CephFS share:

``manila`` (``cephfs.manila.csi.openstack.org``, cloud-provider-openstack)
    The node plugin looks the share up in Manila with OpenStack credentials from the node
    stage *and* node publish secrets (``os-authURL``, ``os-region``,
    ``os-applicationCredentialID``/``-Secret``, optional ``os-TLSInsecure``, ...), then
    forwards the mount to ceph-csi. Volume attributes: ``shareID`` and the access rule
    id. Up to v1.34 only ``shareAccessID`` exists. v1.35 and v1.36 add ``shareAccessIDs``
    but reject a volume carrying both keys (each ``precludes`` the other); the two only
    coexist after v1.36. So exactly one of them is written: ``shareAccessID`` by default,
    ``shareAccessIDs`` with :attr:`CsiSettings.manila_share_access_ids` (needs >= v1.35).
    From v1.35 an access rule id the share does not have makes the node plugin call
    ``klog.Fatalf`` (the whole node plugin dies), so an empty rule id is refused here.

``cephfs`` (``cephfs.csi.ceph.com``, ceph-csi directly)
    Static volume: ``staticVolume: "true"``, ``rootPath`` (the share's export path),
    mandatory ``clusterID`` (the monitors come from the driver's csi-config entry of that
    cluster, never from the PV), optional ``fsName``; the node stage secret holds the
    share's cephx identity as ``userID`` (without ``client.``) and ``userKey``.

Secrets are written as base64 ``data`` (never ``stringData``), so the object read back from
the API server compares directly with the desired one.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACCESS_RULE_ANNOTATION",
    "CEPH_CSI",
    "CSI_DRIVERS",
    "KIND_LABEL",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "MANILA_CSI",
    "OWNER_ANNOTATION",
    "OWNER_LABEL",
    "SHARE_LABEL",
    "CsiSettings",
    "MountedShare",
    "object_name_for",
    "persistent_volume_claim_manifest",
    "persistent_volume_manifest",
    "secret_manifest",
    "validate_csi_settings",
]

CSI_DRIVERS = ("manila", "cephfs")
MANILA_CSI = "cephfs.manila.csi.openstack.org"
CEPH_CSI = "cephfs.csi.ceph.com"
_DRIVER_NAMES = {"manila": MANILA_CSI, "cephfs": CEPH_CSI}

SHARE_KINDS = ("home", "group")
MANAGED_BY = "iris-jupyterhub"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
KIND_LABEL = "iris-jupyterhub/storage-kind"
OWNER_LABEL = "iris-jupyterhub/owner-hash"
SHARE_LABEL = "iris-jupyterhub/share-id"
OWNER_ANNOTATION = "iris-jupyterhub/owner-key"
ACCESS_RULE_ANNOTATION = "iris-jupyterhub/access-rule-id"
_OURS = (MANAGED_BY_LABEL, KIND_LABEL, OWNER_LABEL, SHARE_LABEL)

MAX_ID = 2**31 - 1
_HASH_LEN = 10
_NAME_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_MOUNTERS = ("", "kernel", "fuse")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def object_name_for(kind: str, key: str, hub_name_hint: str = "") -> str:
    """The name shared by the Secret, PersistentVolume and claim of one share.

    ``iris-<kind>[-<hub>]-<readable part of key>-<10 hex>``, at most 63 characters, a
    DNS-1123 label (so it is also a valid pod volume name). The hex is the start of the
    SHA-256 of hub hint, kind and key, so names are deterministic and distinct keys (or
    hubs sharing a cluster: PersistentVolumes are cluster-scoped) do not collide even when
    the readable part is truncated. The hub hint must stay stable: a new hint means new
    object names for every share.
    """
    if kind not in SHARE_KINDS:
        raise ValueError(f"kind must be one of {SHARE_KINDS}, not {kind!r}")
    if not key:
        raise ValueError("an owner key is required")
    digest = hashlib.sha256(f"{hub_name_hint}\n{kind}\n{key}".encode()).hexdigest()[:_HASH_LEN]
    readable = key.split(":", 1)[-1]
    parts = ["iris", kind, _slug(hub_name_hint)[:16].strip("-"), _slug(readable)]
    base = "-".join(p for p in parts if p)[: _NAME_MAX - _HASH_LEN - 1].rstrip("-")
    return f"{base}-{digest}"


@dataclass(frozen=True)
class MountedShare:
    """Everything the builders need about one share and where it is mounted.

    Attributes:
        kind: ``"home"`` or ``"group"``.
        owner_key: Stable key of the owner (``"user:<hash>"``, ``"group:<canonical>"``);
            hashed into a label, kept whole in an annotation.
        object_name: Name of the Secret, PV and PVC (see :func:`object_name_for`).
        share_id: Manila share id; share_size_gb: its size in GiB.
        access_rule_id: Manila access rule id of the hub's cephx identity.
        cephx_id: That cephx identity (``client.`` prefix optional).
        access_key: Its cephx secret: only ever written into the ceph-csi Secret.
        monitors: Ceph monitors from the export location (informational: ceph-csi takes
            them from its csi-config, Manila CSI from Manila).
        root_path: Path of the share inside CephFS (``/volumes/_nogroup/...``).
        mount_path: Where the share appears in the notebook container.
        uid: Owner of a home's root directory; ``None`` for a group share (root-owned).
        gid: Group of the share root (personal group for a home, the group's gid).
        read_only: Mount read-only (and leave ownership alone).
    """

    kind: str
    owner_key: str
    object_name: str
    share_id: str
    share_size_gb: int
    access_rule_id: str
    cephx_id: str
    access_key: str = field(repr=False)
    monitors: tuple[str, ...]
    root_path: str
    mount_path: str
    uid: int | None
    gid: int
    read_only: bool = False

    def __post_init__(self) -> None:
        problems = _share_problems(self)
        if problems:
            raise ValueError(f"MountedShare {self.object_name!r}: " + "; ".join(problems))


def _is_id(value: object, low: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_ID


def _share_problems(share: MountedShare) -> list[str]:
    problems = []
    if share.kind not in SHARE_KINDS:
        problems.append(f"kind must be one of {SHARE_KINDS}")
    if not share.owner_key:
        problems.append("owner_key is empty")
    if len(share.object_name) > _NAME_MAX or not _DNS_LABEL.match(share.object_name):
        problems.append("object_name must be a DNS-1123 label of at most 63 characters")
    for name in ("share_id", "access_rule_id"):
        value = getattr(share, name)
        if not value or len(value) > _NAME_MAX or not _LABEL_VALUE.match(value):
            problems.append(f"{name} must be a non-empty id of letters, digits, '-', '_', '.'")
    if not _is_id(share.share_size_gb):
        problems.append("share_size_gb must be a positive integer")
    if not share.cephx_id.removeprefix("client.") or not share.access_key:
        problems.append("cephx_id and access_key are required")
    if not share.root_path.startswith("/"):
        problems.append("root_path must be an absolute path")
    path = share.mount_path
    if (
        not path.startswith("/")
        or path == "/"
        or posixpath.normpath(path) != path
        or "/.." in path
        or any(c in path for c in ":\n\r\0")
    ):
        problems.append("mount_path must be a normalised absolute path other than '/'")
    if share.kind == "home" and not _is_id(share.uid):
        problems.append("a home needs the owner's uid (1 .. 2**31-1)")
    if share.kind == "group" and share.uid is not None:
        problems.append("a group share is owned by root: uid must be None")
    if not _is_id(share.gid):
        problems.append("gid must be in 1 .. 2**31-1")
    return problems


@dataclass(frozen=True)
class CsiSettings:
    """How shares are mounted in this cluster.

    Attributes:
        driver: ``"manila"`` (Manila CSI) or ``"cephfs"`` (ceph-csi directly).
        namespace: The hub's namespace (Secrets and claims live there).
        ceph_cluster_id: ceph-csi ``clusterID`` (its csi-config key); required for cephfs.
        ceph_fs_name: ceph-csi ``fsName``; empty: the driver's default.
        manila_secret: The ``os-*`` keys for Manila CSI (the hub's application credential).
        manila_share_access_ids: Write ``shareAccessIDs`` instead of ``shareAccessID``
            (cloud-provider-openstack >= 1.35; the two keys are exclusive in 1.35/1.36).
        mounter: ``"kernel"`` or ``"fuse"`` (Manila CSI ``cephfs-mounter``, default
            fuse; ceph-csi ``mounter``); empty: the driver's default.
        labels: Extra labels on every object (e.g. z2jh's ``app``/``release``).
    """

    driver: str
    namespace: str
    ceph_cluster_id: str = ""
    ceph_fs_name: str = ""
    manila_secret: Mapping[str, str] | None = field(default=None, repr=False)
    manila_share_access_ids: bool = False
    mounter: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def validate_csi_settings(csi: CsiSettings) -> None:
    """Raise ``ValueError`` naming the ``ManilaStorage`` trait for a bad setting."""
    if csi.driver not in CSI_DRIVERS:
        raise ValueError(f"ManilaStorage.csi_driver: must be one of {CSI_DRIVERS}")
    if not _DNS_LABEL.match(csi.namespace) or len(csi.namespace) > _NAME_MAX:
        raise ValueError("ManilaStorage.namespace: must be a Kubernetes namespace name")
    if csi.mounter not in _MOUNTERS:
        raise ValueError("ManilaStorage.mounter: must be 'kernel', 'fuse' or empty")
    for key, value in csi.labels.items():
        if key in _OURS:
            raise ValueError(f"ManilaStorage.labels: {key!r} is set by iris-jupyterhub")
        if not isinstance(value, str) or len(value) > _NAME_MAX or not _LABEL_VALUE.match(value):
            raise ValueError(f"ManilaStorage.labels: {key!r} has an invalid label value")
    if csi.driver == "cephfs" and not csi.ceph_cluster_id:
        raise ValueError(
            "ManilaStorage.ceph_cluster_id: required with the cephfs (ceph-csi) driver: "
            "the clusterID key of the ceph-csi csi-config entry for this Ceph cluster"
        )
    if csi.driver == "manila":
        secret = csi.manila_secret or {}
        missing = [k for k in ("os-authURL", "os-region") if not secret.get(k)]
        if missing:
            raise ValueError(f"ManilaStorage.manila_secret: missing {', '.join(missing)}")
        bad = [k for k in secret if not k.startswith("os-") or not _SECRET_KEY.match(k)]
        if bad:
            raise ValueError(f"ManilaStorage.manila_secret: keys must be os-*, not {bad}")
        if secret.get("os-TLSInsecure", "false") not in ("true", "false"):
            raise ValueError("ManilaStorage.manila_secret: os-TLSInsecure is 'true' or 'false'")


def _metadata(share: MountedShare, csi: CsiSettings, *, namespaced: bool) -> dict[str, Any]:
    owner_hash = hashlib.sha256(share.owner_key.encode()).hexdigest()[:32]
    meta: dict[str, Any] = {
        "name": share.object_name,
        "labels": {
            **csi.labels,
            MANAGED_BY_LABEL: MANAGED_BY,
            KIND_LABEL: share.kind,
            OWNER_LABEL: owner_hash,
            SHARE_LABEL: share.share_id,
        },
        "annotations": {
            OWNER_ANNOTATION: share.owner_key,
            ACCESS_RULE_ANNOTATION: share.access_rule_id,
        },
    }
    if namespaced:
        meta["namespace"] = csi.namespace
    return meta


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def secret_manifest(share: MountedShare, csi: CsiSettings) -> dict[str, Any]:
    """The Opaque Secret the CSI node plugin reads when mounting ``share``.

    manila: the ``os-*`` credentials of :attr:`CsiSettings.manila_secret`; cephfs:
    ``userID`` (cephx id without ``client.``) and ``userKey`` (the access key).
    """
    validate_csi_settings(csi)
    if csi.driver == "manila":
        values = dict(csi.manila_secret or {})
    else:
        values = {"userID": share.cephx_id.removeprefix("client."), "userKey": share.access_key}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(share, csi, namespaced=True),
        "type": "Opaque",
        "data": {key: _b64(value) for key, value in sorted(values.items())},
    }


def _storage(share: MountedShare) -> str:
    return f"{share.share_size_gb}Gi"


def persistent_volume_manifest(share: MountedShare, csi: CsiSettings) -> dict[str, Any]:
    """The static PersistentVolume of ``share``, pre-bound to its claim.

    ``claimRef`` names the claim (namespace and name), so no other claim can bind it;
    reclaim policy ``Retain`` and no storage class, so nothing ever deletes the share.
    """
    validate_csi_settings(csi)
    secret_ref = {"name": share.object_name, "namespace": csi.namespace}
    attributes: dict[str, str]
    if csi.driver == "manila":
        access_key = "shareAccessIDs" if csi.manila_share_access_ids else "shareAccessID"
        attributes = {"shareID": share.share_id, access_key: share.access_rule_id}
        if csi.mounter:
            attributes["cephfs-mounter"] = csi.mounter
    else:
        attributes = {
            "clusterID": csi.ceph_cluster_id,
            "staticVolume": "true",
            "rootPath": share.root_path,
        }
        if csi.ceph_fs_name:
            attributes["fsName"] = csi.ceph_fs_name
        if csi.mounter:
            attributes["mounter"] = csi.mounter
    source: dict[str, Any] = {
        "driver": _DRIVER_NAMES[csi.driver],
        # Unique per share and rule; the "iris-" prefix keeps ceph-csi from mistaking it
        # for one of its own encoded volume ids.
        "volumeHandle": f"iris-{share.share_id}-{share.access_rule_id}",
        "volumeAttributes": attributes,
        "nodeStageSecretRef": secret_ref,
    }
    if csi.driver == "manila":
        source["nodePublishSecretRef"] = dict(secret_ref)
    if share.read_only:
        source["readOnly"] = True
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": _metadata(share, csi, namespaced=False),
        "spec": {
            "capacity": {"storage": _storage(share)},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "volumeMode": "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": csi.namespace,
                "name": share.object_name,
            },
            "csi": source,
        },
    }


def persistent_volume_claim_manifest(share: MountedShare, csi: CsiSettings) -> dict[str, Any]:
    """The claim in the hub namespace, bound by name to the PersistentVolume of ``share``."""
    validate_csi_settings(csi)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(share, csi, namespaced=True),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": _storage(share)}},
            "storageClassName": "",
            "volumeMode": "Filesystem",
            "volumeName": share.object_name,
        },
    }
