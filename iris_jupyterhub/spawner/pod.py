"""Everything a researcher's pod gets, assembled in one place from plain data.

:func:`build_pod` takes the user's POSIX identity (``auth_state["posix"]``), the group
they chose to run as and the storage prepared for the spawn (a
:class:`~iris_jupyterhub.storage.volumes.PodStorage`, or ``None`` when storage is off),
and returns a :class:`PodSettings`: security contexts, supplementary groups, environment,
volumes, mounts and init containers. :func:`spawner_traits` merges that into the
KubeSpawner traits an administrator may already have set (extra volumes, environment);
:class:`~iris_jupyterhub.spawner.IRISSpawner` assigns the result in one method.

**No fsGroup with shares.** A pod that mounts shares gets no ``fsGroup``: with ceph-csi
(CSIDriver ``fsGroupPolicy: File``) kubelet would otherwise change the group of every
file in a home or group share to the session's group, and add group write, on the first
mount with each new group (``fsGroupChangePolicy: OnRootMismatch`` does not prevent that
for a 0700 home). Ownership of new share roots is the storage init container's job (see
:mod:`iris_jupyterhub.storage.volumes`); the session's group still applies through
``runAsGroup`` and ``supplementalGroups``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .security import RunAs, run_as, security_settings

if TYPE_CHECKING:
    from ..storage.volumes import PodStorage

__all__ = ["PodSettings", "build_pod", "literal", "pod_for", "spawner_traits"]

#: Prefix of the keys of storage entries in dict-shaped KubeSpawner traits.
STORAGE_KEY_PREFIX = "iris-storage-"


@dataclass(frozen=True)
class PodSettings:
    """What a researcher's pod gets, shaped like the Kubernetes API objects it goes into.

    Attributes:
        uid: ``runAsUser``.
        gid: ``runAsGroup``: the gid of the chosen group.
        fs_gid: ``fsGroup``, or ``None`` when the pod mounts shares.
        supplemental_gids: Every group of the user.
        pod_security_context: For ``spec.securityContext``.
        container_security_context: For the notebook container's ``securityContext``.
        environment: ``NB_USER``, ``NB_UID``, ``NB_GID`` and ``HOME`` (the home share's
            mount path when storage gives one, else ``/home/<username>``).
        volumes: Added to ``spec.volumes``.
        volume_mounts: Added to the notebook container's ``volumeMounts``.
        init_containers: Added to ``spec.initContainers``.
        group: The POSIX group name the server runs as.
        notice: A sentence for the researcher when a saved group was replaced, else ``None``.
    """

    uid: int
    gid: int
    fs_gid: int | None
    supplemental_gids: list[int]
    pod_security_context: dict[str, Any]
    container_security_context: dict[str, Any]
    environment: dict[str, str]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    group: str = ""
    notice: str | None = None


def build_pod(
    posix: Mapping[str, Any] | None,
    chosen_group: str | None,
    storage: PodStorage | None,
    *,
    stale_fallback: bool = False,
) -> PodSettings:
    """Assemble the pod of a server of the user described by ``posix``.

    Args:
        posix: ``auth_state["posix"]`` (see :mod:`~iris_jupyterhub.spawner.security`).
        chosen_group: The POSIX group to run as, or ``None``/``""`` for the personal group.
        storage: The spawn's storage, or ``None`` when storage is off for it.
        stale_fallback: As for :func:`~iris_jupyterhub.spawner.security.run_as`.

    Raises:
        SpawnRequestError: As :func:`~iris_jupyterhub.spawner.security.run_as`.
    """
    return pod_for(run_as(posix, chosen_group, stale_fallback=stale_fallback), storage)


def pod_for(run: RunAs, storage: PodStorage | None) -> PodSettings:
    """:func:`build_pod` for an identity already checked by
    :func:`~iris_jupyterhub.spawner.security.run_as` (the spawner checks it before the
    quota and storage steps, and does not check it twice)."""
    shares = bool(storage is not None and storage.volumes)
    home = storage.home if storage is not None else None
    security = security_settings(run, fs_group=not shares, home=home)
    return PodSettings(
        uid=run.uid,
        gid=run.gid,
        fs_gid=None if shares else run.gid,
        supplemental_gids=list(run.supplemental_gids),
        pod_security_context=dict(security.pod_security_context),
        container_security_context=dict(security.container_security_context),
        environment=dict(security.environment),
        volumes=list(storage.volumes) if storage else [],
        volume_mounts=list(storage.volume_mounts) if storage else [],
        init_containers=list(storage.init_containers) if storage else [],
        group=run.group,
        notice=run.notice,
    )


def literal(value: Any) -> Any:
    """``value`` with ``{``/``}`` doubled in every string: KubeSpawner expands
    ``{username}``-style templates in volumes, mounts and init containers with
    ``str.format``, and the init container's shell script has braces of its own."""
    if isinstance(value, str):
        return value.replace("{", "{{").replace("}", "}}")
    if isinstance(value, Mapping):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [literal(v) for v in value]
    return value


def _extend(current: Any, added: Sequence[Mapping[str, Any]], key: str) -> Any:
    """Add ``added`` to a KubeSpawner list trait that may also be a dict (KubeSpawner 7)."""
    if not added:
        return current
    if isinstance(current, Mapping):
        merged = dict(current)
        merged.update({f"{STORAGE_KEY_PREFIX}{item[key]}": literal(item) for item in added})
        return merged
    return [*(current or []), *(literal(item) for item in added)]


def _without_mounts_at(current: Any, paths: set[str]) -> tuple[Any, list[str]]:
    """``current`` mounts without those at ``paths``, and the clashing paths (sorted)."""
    others = current.values() if isinstance(current, Mapping) else current or []
    clash = sorted(paths & {m.get("mountPath") for m in others})
    if not clash:
        return current, []
    if isinstance(current, Mapping):
        return {k: m for k, m in current.items() if m.get("mountPath") not in paths}, clash
    return [m for m in others if m.get("mountPath") not in paths], clash


def spawner_traits(
    pod: PodSettings, current: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The KubeSpawner trait values for ``pod``, and the mount paths it took over.

    Args:
        pod: From :func:`build_pod`.
        current: The spawner's current ``volumes``, ``volume_mounts``,
            ``init_containers`` and ``environment`` (lists or KubeSpawner 7 dicts).

    Returns:
        The traits to assign, and the mount paths at which ``current`` already mounted
        something that a share replaces (the caller warns about them). Storage entries
        are brace-escaped with :func:`literal`; in dict-shaped traits they are keyed
        ``iris-storage-<name>``.
    """
    mounts, clash = _without_mounts_at(
        current.get("volume_mounts"), {m["mountPath"] for m in pod.volume_mounts}
    )
    traits: dict[str, Any] = {
        "uid": pod.uid,
        "gid": pod.gid,
        "fs_gid": pod.fs_gid,
        "supplemental_gids": list(pod.supplemental_gids),
        "allow_privilege_escalation": False,
        "privileged": False,
        "pod_security_context": dict(pod.pod_security_context),
        "container_security_context": dict(pod.container_security_context),
        "environment": {**(current.get("environment") or {}), **pod.environment},
    }
    if pod.volumes or pod.volume_mounts or pod.init_containers:
        traits["volumes"] = _extend(current.get("volumes"), pod.volumes, "name")
        traits["volume_mounts"] = _extend(mounts, pod.volume_mounts, "name")
        traits["init_containers"] = _extend(
            current.get("init_containers"), pod.init_containers, "name"
        )
    return traits, clash
