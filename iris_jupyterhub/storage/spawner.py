"""What :class:`~iris_jupyterhub.spawner.IRISSpawner` calls to give a pod its storage.

:func:`storage_settings` reads ``c.ManilaStorage`` through the spawner's configuration;
:func:`prepare_storage` runs :class:`~iris_jupyterhub.storage.service.StorageService` for
the spawn and returns the :class:`~iris_jupyterhub.storage.volumes.PodStorage` (volumes,
mounts, init container, home path) that
:func:`iris_jupyterhub.spawner.pod.build_pod` puts into the pod. Failures are logged
and raised as :class:`~iris_jupyterhub.storage.errors.StorageError`, which the spawner
turns into the HTTP error with the researcher's sentence, so JupyterHub fails the spawn
before any pod is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import ManilaStorage
from .errors import StorageConfigError, StorageError

if TYPE_CHECKING:
    from .volumes import PodStorage

__all__ = ["check_config", "prepare_storage", "storage_settings"]

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


async def prepare_storage(
    spawner: Any, auth_state: Mapping[str, Any] | None, *, profile_storage: bool = True
) -> PodStorage | None:
    """Prepare the spawn's storage; ``None`` when storage is off for it.

    The result goes into the pod through
    :func:`iris_jupyterhub.spawner.pod.build_pod`; nothing on ``spawner`` is changed.

    Raises:
        StorageError: Logged here, with the status and the researcher's sentence the
            spawn answers with: 503 with ``Retry-After`` (storage did not answer), 507
            (quota), 500 (error state, conflict, misconfiguration:
            :class:`~iris_jupyterhub.storage.errors.StorageConfigError`).
    """
    if "ManilaStorage" not in spawner.config:
        return None  # storage is off unless c.ManilaStorage.enabled is set
    try:
        settings = storage_settings(spawner)
    except ValueError as e:
        spawner.log.error("Storage configuration is invalid: %s", e)
        raise StorageConfigError(str(e), user_message=_MISCONFIGURED) from e
    if not settings.enabled or not profile_storage:
        return None
    # the OpenStack clients are imported only by hubs that use them
    from .service import owner_from_auth_state, service_for  # noqa: PLC0415

    namespace = settings.namespace or spawner.namespace
    try:
        owner = owner_from_auth_state(auth_state)
        # leave a fifth of start_timeout for the pod: the storage error must come first
        bound = 0.8 * float(getattr(spawner, "start_timeout", 0) or 0) or None
        return await service_for(settings).prepare(
            owner, api=spawner.api, namespace=namespace, timeout=bound
        )
    except StorageError as e:
        spawner.log.error("Spawn of %s failed on storage: %s", spawner._log_name, e.detail)
        raise
