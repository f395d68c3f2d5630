"""What :class:`~iris_jupyterhub.spawner.IRISSpawner` calls to give a pod its storage.

:func:`storage_settings` reads ``c.ManilaStorage`` through the spawner's configuration;
:func:`prepare_storage` runs :class:`~iris_jupyterhub.storage.service.StorageService` for
the spawn and applies the result to the spawner's traits (volumes, mounts, init container,
``HOME``; no ``fsGroup``). Failures become :class:`tornado.web.HTTPError` with
the researcher's sentence, so JupyterHub fails the spawn before any pod is created.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tornado import web

from ..errors import http_error
from .config import ManilaStorage
from .errors import StorageError, StorageQuotaError, StorageUnavailableError

if TYPE_CHECKING:
    from .volumes import PodStorage

__all__ = [
    "apply_pod_storage",
    "check_config",
    "literal",
    "prepare_storage",
    "storage_settings",
]

_MISCONFIGURED = (
    "This hub's storage is misconfigured, so servers cannot be started. "
    "The hub administrators have been told; please contact them."
)
_CHECKED: dict[int, ManilaStorage] = {}


def check_config(config: Any) -> ManilaStorage:
    """Check ``c.ManilaStorage`` now and return the checked settings.

    :func:`iris_jupyterhub.startup.check_config` calls this at hub start-up (the IRIS
    authenticators run it), so a mistake stops the hub instead of the first spawn.

    Raises:
        ValueError: Naming ``ManilaStorage.<option>``.
    """
    return ManilaStorage(config=config)


def storage_settings(spawner: Any) -> ManilaStorage:
    """The ``ManilaStorage`` configuration seen by ``spawner``, checked.

    Raises:
        ValueError: Naming ``ManilaStorage.<option>`` for an administrator's mistake.
    """
    config = spawner.config
    cached = _CHECKED.get(id(config))
    if cached is not None and cached.config is config:
        return cached
    settings = ManilaStorage(config=config, log=spawner.log)
    if len(_CHECKED) > 8:
        _CHECKED.clear()
    _CHECKED[id(config)] = settings
    return settings


def _status(error: StorageError) -> int:
    if isinstance(error, StorageUnavailableError):
        return 503
    if isinstance(error, StorageQuotaError):
        return 507
    return 500


async def prepare_storage(
    spawner: Any, auth_state: Mapping[str, Any] | None, *, profile_storage: bool = True
) -> PodStorage | None:
    """Prepare and attach the spawn's storage; ``None`` when storage is off for it.

    Raises:
        tornado.web.HTTPError: 503 (storage did not answer), 507 (quota), 500 (error
            state, conflict, misconfiguration) with the researcher's sentence.
    """
    if "ManilaStorage" not in spawner.config:
        return None  # storage is off unless c.ManilaStorage.enabled is set
    try:
        settings = storage_settings(spawner)
    except ValueError as e:
        spawner.log.error("Storage configuration is invalid: %s", e)
        raise http_error(500, _MISCONFIGURED) from e
    if not settings.enabled or not profile_storage:
        return None
    # the OpenStack clients are imported only by hubs that use them
    from .service import owner_from_auth_state, service_for  # noqa: PLC0415

    namespace = settings.namespace or spawner.namespace
    try:
        owner = owner_from_auth_state(auth_state)
        # leave a fifth of start_timeout for the pod: the storage error must come first
        bound = 0.8 * float(getattr(spawner, "start_timeout", 0) or 0) or None
        result = await service_for(settings).prepare(
            owner, api=spawner.api, namespace=namespace, timeout=bound
        )
    except StorageError as e:
        spawner.log.error("Spawn of %s failed on storage: %s", spawner._log_name, e.detail)
        raise _spawn_error(e) from e
    apply_pod_storage(spawner, result, home=settings.home_path_for(owner.username))
    return result


def _spawn_error(error: StorageError) -> web.HTTPError:
    headers = {"Retry-After": "120"} if isinstance(error, StorageUnavailableError) else None
    return http_error(_status(error), error.user_message, headers=headers)


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
    if isinstance(current, Mapping):
        merged = dict(current)
        merged.update({f"iris-storage-{item[key]}": literal(item) for item in added})
        return merged
    return [*(current or []), *(literal(item) for item in added)]


def apply_pod_storage(spawner: Any, storage: PodStorage, *, home: str) -> None:
    """Put ``storage`` into the spawner's traits; ``HOME`` becomes ``home``.

    A pod that mounts shares gets no ``fsGroup``: with ceph-csi (CSIDriver
    ``fsGroupPolicy: File``) kubelet would otherwise change the group of every file in a
    home or group share to the session's group, and add group write, on the first mount
    with each new group (``fsGroupChangePolicy: OnRootMismatch`` does not prevent that
    for a 0700 home). Ownership of new share roots is the init container's job; the
    session's group still applies through ``runAsGroup`` and ``supplementalGroups``.
    """
    mounts = {m["mountPath"] for m in storage.volume_mounts}
    existing = spawner.volume_mounts
    others = existing.values() if isinstance(existing, Mapping) else existing or []
    clash = sorted(mounts & {m.get("mountPath") for m in others})
    if clash:
        spawner.log.warning(
            "Storage: the spawner already mounts something at %s; the share is mounted "
            "there instead (set singleuser.storage.type: none in z2jh)",
            ", ".join(clash),
        )
        kept = [m for m in others if m.get("mountPath") not in mounts]
        existing = (
            {k: m for k, m in spawner.volume_mounts.items() if m.get("mountPath") not in mounts}
            if isinstance(existing, Mapping)
            else kept
        )
    spawner.volumes = _extend(spawner.volumes, storage.volumes, "name")
    spawner.volume_mounts = _extend(existing, storage.volume_mounts, "name")
    spawner.init_containers = _extend(spawner.init_containers, storage.init_containers, "name")
    spawner.environment = {**spawner.environment, "HOME": home}
    if storage.volumes:
        context = dict(spawner.pod_security_context or {})
        context.pop("fsGroup", None)
        context.pop("fsGroupChangePolicy", None)
        spawner.pod_security_context = context
        spawner.fs_gid = None
