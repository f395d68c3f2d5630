"""Create the Kubernetes objects of a share, or adopt identical ones: never change or delete.

A share's Secret, PersistentVolume and PersistentVolumeClaim are created once, by the
first spawn that needs them. Every spawn reads each object first; a missing one is
created, and a ``409 Conflict`` (a concurrent spawn created it meanwhile) means reading it
again. An existing object is compared with what this spawn would have created
(:func:`~iris_jupyterhub.storage.compare.same_object`). Equal: it is adopted. Different:
the spawn fails with :class:`~iris_jupyterhub.storage.errors.StorageConflictError` and the
hub log says which fields differ, because changing a bound volume under a running server is
an administrator's decision, not the hub's. Nothing here patches, replaces or deletes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client.rest import ApiException

from .compare import same_object
from .errors import StorageConflictError, StorageError, StorageUnavailableError

__all__ = ["AppliedObject", "apply_objects", "ensure_object"]

_KINDS = {
    "Secret": ("namespaced_secret", True),
    "PersistentVolume": ("persistent_volume", False),
    "PersistentVolumeClaim": ("namespaced_persistent_volume_claim", True),
}

_UNAVAILABLE = (
    "Your storage could not be prepared because the cluster did not answer. "
    "Your files are safe; please try again in a few minutes."
)
_CONFLICT = (
    "Your storage could not be attached because the cluster holds a different volume "
    "under the same name. Your files are safe; please contact the hub administrators."
)
_FORBIDDEN = (
    "Your storage could not be attached because of the hub's cluster permissions. "
    "Your files are safe; please contact the hub administrators."
)


@dataclass(frozen=True)
class AppliedObject:
    """One object as it is now in the cluster, and whether this call created it."""

    kind: str
    name: str
    namespace: str | None
    created: bool


def _where(kind: str, name: str, namespace: str | None) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


async def _call(what: str, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float) -> Any:
    """One API call; transport failures and time-outs become StorageUnavailableError."""
    try:
        return await asyncio.wait_for(fn(*args, _request_timeout=timeout), timeout * 1.5)
    except ApiException:
        raise
    except (OSError, asyncio.TimeoutError) as e:
        raise StorageUnavailableError(
            f"{what}: {type(e).__name__}: {e}", user_message=_UNAVAILABLE, retryable=True
        ) from e


def _api_error(what: str, error: ApiException) -> StorageError:
    detail = f"{what}: HTTP {error.status} {error.reason}: {str(error.body)[:300]}"
    if error.status in (401, 403):
        return StorageError(
            f"{detail} (the hub's service account needs the rules of helm/storage-rbac.yaml)",
            user_message=_FORBIDDEN,
        )
    if error.status >= 500 or error.status == 429:
        return StorageUnavailableError(detail, user_message=_UNAVAILABLE, retryable=True)
    return StorageError(detail, user_message=_CONFLICT)


async def ensure_object(
    api: Any,
    manifest: Mapping[str, Any],
    *,
    log: logging.Logger,
    timeout: float = 15.0,
) -> AppliedObject:
    """Create ``manifest`` (a Secret, PersistentVolume or PersistentVolumeClaim) or adopt it.

    Args:
        api: A ``kubernetes_asyncio`` ``CoreV1Api`` (KubeSpawner's shared client).
        manifest: The object as :mod:`~iris_jupyterhub.storage.manifests` built it.
        log: For one line per object created or adopted, and the detail of failures.
        timeout: Seconds for each API request.

    Raises:
        StorageConflictError: An object of that name exists and differs (the fields are
            in the log and in ``detail``).
        StorageUnavailableError: The API did not answer, or answered 5xx/429.
        StorageError: Any other refusal (403: missing RBAC; 422: invalid object).
    """
    kind = str(manifest["kind"])
    suffix, namespaced = _KINDS[kind]
    name = str(manifest["metadata"]["name"])
    namespace = manifest["metadata"].get("namespace") if namespaced else None
    where = _where(kind, name, namespace)
    create = getattr(api, f"create_{suffix}")
    read = getattr(api, f"read_{suffix}")
    scope = (namespace,) if namespaced else ()
    body = dict(manifest)
    for _ in range(3):
        # read first: after the first spawn every object exists, and a read is the cheapest
        # way to know (no create request reaching admission only to be refused)
        try:
            existing = await _call(f"read {where}", read, name, *scope, timeout=timeout)
        except ApiException as e:
            if e.status != 404:
                error = _api_error(f"read {where}", e)
                log.error("Storage: %s", error.detail)
                raise error from e
        else:
            _check_same(api, existing, body, where, log)
            return AppliedObject(kind, name, namespace, created=False)
        try:
            await _call(f"create {where}", create, *scope, body, timeout=timeout)
            log.info("Storage: created %s", where)
            return AppliedObject(kind, name, namespace, created=True)
        except ApiException as e:
            if e.status != 409:  # 409: created meanwhile by a concurrent spawn: read it
                error = _api_error(f"create {where}", e)
                log.error("Storage: %s", error.detail)
                raise error from e
    raise StorageUnavailableError(
        f"{where} kept disappearing while adopted", user_message=_UNAVAILABLE, retryable=True
    )


def _check_same(
    api: Any, existing: Any, desired: Mapping[str, Any], where: str, log: logging.Logger
) -> None:
    """Adopt ``existing`` if it is what the hub would create; else StorageConflictError."""
    current = api.api_client.sanitize_for_serialization(existing)
    differences = same_object(current, desired)
    if not differences:
        log.debug("Storage: adopted existing %s", where)
        return
    detail = (
        f"{where} exists and differs from what the hub would create at "
        f"{', '.join(differences[:8])}; the hub never changes or deletes it: "
        "remove or fix it by hand (see the storage admin guide)"
    )
    log.error("Storage: %s", detail)
    raise StorageConflictError(detail, user_message=_CONFLICT)


async def apply_objects(
    api: Any,
    manifests: Sequence[Mapping[str, Any]],
    *,
    log: logging.Logger,
    timeout: float = 15.0,
) -> list[AppliedObject]:
    """:func:`ensure_object` for each manifest, concurrently (the order does not matter to
    Kubernetes: a claim waits for its volume, a volume's secret is read only at mount)."""
    return list(
        await asyncio.gather(*(ensure_object(api, m, log=log, timeout=timeout) for m in manifests))
    )
