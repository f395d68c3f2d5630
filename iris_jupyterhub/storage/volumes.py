"""Pod volumes, mounts and the ownership init container for mounted shares.

**Ownership of a new share.** Manila creates a CephFS share whose root directory is owned
by ``root:root`` with mode 755 (Manila's ``cephfs_volume_mode``), so a researcher's pod,
which never runs as root, cannot write to it. The fix is one step on the share's *root
directory only*, never recursive, done by the init container ``iris-storage-init`` on
first use:

* a home (``uid:gid``, the personal group) becomes ``chmod 0700`` then
  ``chown <uid>:<gid>``: private whatever the gid is (sites that give every user the same
  primary gid, docker-stacks' 100, would expose 0750 or 2770 homes to everyone);
* a group share becomes ``chmod 2770`` then ``chown 0:<gid>``: the group can read and
  write, new files inherit the group (setgid) and, the root staying root-owned, no member
  can lock the others out by changing its mode.

It acts only while a home's root is still owned by uid 0 (whatever its group: kubelet
may already have applied an ``fsGroup``) and while a group share's root is still ``0:0``
(stat), so later starts are no-ops and a researcher's own later ``chmod`` of their home
is respected. The mode is set before the owner: if the ``chown`` fails the directory
stays root-owned (and already private) and is tried again on the next start (the pod
fails to start, loudly, meanwhile); the mode is set once more after the ``chown``
because some file systems clear setgid on ``chown``. The shell script is a fixed
text in which only integers are interpolated (share index, uid, gid, mode): no user or
group name ever reaches a shell.

The container runs as uid/gid 0 with every capability dropped except ``CHOWN`` (give the
root to the user), ``FOWNER`` (chmod a directory it no longer owns) and ``FSETID`` (keep the
setgid bit on a directory whose group it is not in); ``DAC_OVERRIDE`` is not needed
(``stat``/``chown``/``chmod`` need search permission on the parents only, which are the
container's own root-owned mount points). No privilege escalation, RuntimeDefault
seccomp, read-only root file system, small resources. Use an image the node already has
(the singleuser image: it has ``/bin/sh``, ``stat``, ``chown``, ``chmod``). With ceph-fuse
(Manila CSI's default mounter) the permission check is made by the Ceph client for uid 0;
a cephx identity with ``root_squash`` would make the step fail (visibly).

**Why not fsGroup.** Kubelet applies ``fsGroup`` to a CSI volume according to the
driver's ``fsGroupPolicy``:

* Manila CSI's CSIDriver has no policy by default (``ReadWriteOnceWithFSType``), which
  ignores ``fsGroup`` for ReadWriteMany volumes: the share root would stay root-owned;
* ceph-csi's CSIDriver says ``File``: kubelet changes group and mode of the whole tree
  to the pod's ``fsGroup`` on *every* mount (slow on large homes). ``fsGroupChangePolicy:
  OnRootMismatch`` skips that only while the root already has group ``fsGroup`` and mode
  ``2770`` or more; a 0700 home, or the share of another group than the one the pod runs
  as, never matches, and would be re-grouped recursively to the pod's group. Pods that
  mount shares through ceph-csi should therefore not set ``fsGroup`` (or the cluster
  admin sets the CSIDriver's ``fsGroupPolicy: None``); where ``fsGroup`` stays, set
  ``fsGroupChangePolicy: OnRootMismatch``.

**Pod Security admission.** A namespace enforcing the Pod Security ``restricted`` profile
rejects a container running as root or adding capabilities (``baseline`` allows
``CHOWN``, ``FOWNER``, ``FSETID``). There, use ``pod_storage(..., ownership_init=False)``
and make share roots usable beforehand: the admin sets the ownership of each new share
(a privileged job, or ``chown``/``chmod`` from a machine mounting the CephFS), or sets
Manila's ``cephfs_volume_mode`` so that every new share root is writable to begin with
(it applies to all shares alike, so it trades away the privacy of homes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .manifests import MountedShare

__all__ = [
    "GROUP_MODE",
    "HOME_MODE",
    "INIT_CONTAINER_NAME",
    "INIT_MOUNT_ROOT",
    "PodStorage",
    "ownership_script",
    "pod_storage",
]

INIT_CONTAINER_NAME = "iris-storage-init"
#: Where the init container mounts share number ``i``: ``/iris-storage/<i>``.
INIT_MOUNT_ROOT = "/iris-storage"
HOME_MODE = 0o700
GROUP_MODE = 0o2770
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")

_SCRIPT_HEAD = """\
set -eu
own() {
  chmod "$4" "$1"
  chown "$2:$3" "$1"
  chmod "$4" "$1"
  echo "iris-storage-init: $1 is now owned by $2:$3 with mode $4"
}
own_home() {
  if [ "$(stat -c %u "$1")" = 0 ]; then own "$1" "$2" "$3" "$4"; fi
}
own_group() {
  if [ "$(stat -c %u:%g "$1")" = 0:0 ]; then own "$1" "$2" "$3" "$4"; fi
}
"""


@dataclass(frozen=True)
class PodStorage:
    """What goes into the pod: ``spec.volumes``, the notebook container's
    ``volumeMounts``, and ``spec.initContainers`` (empty when nothing to do); ``home`` is
    the mount path of the home share (the pod's ``HOME``), ``None`` without one."""

    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]
    init_containers: list[dict[str, Any]]
    home: str | None = None


def ownership_script(entries: Sequence[tuple[int, int, int, int]]) -> str:
    """The init script for ``(index, uid, gid, mode)`` entries; only integers go in.

    ``uid`` 0 marks a group share (root-owned, changed only while ``0:0``); any other
    uid a home (changed while its owner is root, whatever the group: kubelet may already
    have given it the pod's ``fsGroup``).
    """
    for entry in entries:
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in entry):
            raise ValueError(f"ownership entries are non-negative integers, not {entry!r}")
        if entry[3] > 0o7777:
            raise ValueError(f"not a file mode: {entry[3]:o}")
    lines = [
        f"own_home {INIT_MOUNT_ROOT}/{index} {uid} {gid} {mode:04o}\n"
        if uid
        else f"own_group {INIT_MOUNT_ROOT}/{index} 0 {gid} {mode:04o}\n"
        for index, uid, gid, mode in entries
    ]
    return _SCRIPT_HEAD + "".join(lines)


def _security_context() -> dict[str, Any]:
    return {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "FSETID"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _init_container(
    shares: Sequence[MountedShare],
    entries: Sequence[tuple[int, int, int, int]],
    init_image: str,
    image_pull_policy: str | None,
) -> dict[str, Any]:
    """The ownership init container for ``(index, uid, gid, mode)`` entries of ``shares``."""
    if not init_image:
        raise ValueError("an init image is required for the ownership step")
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": init_image,
        "command": ["/bin/sh", "-c", ownership_script(entries)],
        "volumeMounts": [
            {"name": shares[index].object_name, "mountPath": f"{INIT_MOUNT_ROOT}/{index}"}
            for index, *_ in entries
        ],
        "securityContext": _security_context(),
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
    }
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    return container


def pod_storage(
    shares: Sequence[MountedShare],
    *,
    init_image: str,
    image_pull_policy: str | None = None,
    ownership_init: bool = True,
) -> PodStorage:
    """Volumes, mounts and (with ``ownership_init``) the init container for ``shares``.

    Each share is a ``persistentVolumeClaim`` volume named after its objects (a DNS-1123
    label) mounted at ``share.mount_path``. Names and mount paths must be distinct.
    Read-only shares are mounted read-only and left out of the ownership step.
    """
    names = [share.object_name for share in shares]
    paths = [share.mount_path for share in shares]
    if len(set(names)) != len(names):
        raise ValueError(f"shares mounted twice: {sorted(n for n in names if names.count(n) > 1)}")
    if len(set(paths)) != len(paths):
        raise ValueError(f"two shares at one mount path: {sorted(paths)}")
    if image_pull_policy not in (None, *_PULL_POLICIES):
        raise ValueError(f"image_pull_policy must be one of {_PULL_POLICIES}")
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for share in shares:
        claim: dict[str, Any] = {"claimName": share.object_name}
        mount: dict[str, Any] = {"name": share.object_name, "mountPath": share.mount_path}
        if share.read_only:
            claim["readOnly"] = True
            mount["readOnly"] = True
        volumes.append({"name": share.object_name, "persistentVolumeClaim": claim})
        mounts.append(mount)

    entries = [
        (index, share.uid or 0, share.gid, HOME_MODE if share.kind == "home" else GROUP_MODE)
        for index, share in enumerate(shares)
        if not share.read_only
    ]
    init_containers: list[dict[str, Any]] = []
    if ownership_init and entries:
        init_containers.append(_init_container(shares, entries, init_image, image_pull_policy))
    home = next((share.mount_path for share in shares if share.kind == "home"), None)
    return PodStorage(
        volumes=volumes, volume_mounts=mounts, init_containers=init_containers, home=home
    )
