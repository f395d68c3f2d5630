"""Per-user and per-group CephFS storage from OpenStack Manila.

The OpenStack clients (:mod:`~iris_jupyterhub.storage.keystone`,
:mod:`~iris_jupyterhub.storage.manila`, :mod:`~iris_jupyterhub.storage.shares`,
:mod:`~iris_jupyterhub.storage.service`) and ``httpx`` are imported only when one of their
names is first used, so importing this package (as :class:`~iris_jupyterhub.spawner.IRISSpawner`
does) costs nothing on hubs without storage.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .compare import same_object
from .config import ManilaStorage
from .errors import (
    StorageConfigError,
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
    StorageQuotaError,
    StorageStateError,
    StorageUnavailableError,
    StorageVersionError,
)
from .exports import CephExport, choose_export, parse_export_location
from .groups import GroupShare, parse_group_shares
from .kube import AppliedObject, apply_objects, ensure_object
from .manifests import (
    CsiSettings,
    MountedShare,
    object_name_for,
    persistent_volume_claim_manifest,
    persistent_volume_manifest,
    secret_manifest,
)
from .spawner import check_config, prepare_storage, storage_settings
from .volumes import PodStorage, pod_storage

if TYPE_CHECKING:
    from .keystone import KeystoneSession
    from .manila import (
        MAX_MICROVERSION,
        MIN_MICROVERSION,
        AccessRule,
        ManilaClient,
        RetryPolicy,
        Share,
        share_available,
    )
    from .service import (
        HOME_SIGN_IN_FAILED,
        HOME_UNAVAILABLE,
        StorageOwner,
        StorageService,
        group_key,
        home_key,
        owner_from_auth_state,
        service_for,
    )
    from .shares import (
        METADATA_CEPHX_ID,
        METADATA_KEY,
        METADATA_MANAGED,
        ReadyShare,
        ShareSpec,
        ensure_share,
    )

#: Names re-exported from the modules that need ``httpx``, loaded on first use.
_LAZY = {
    "KeystoneSession": "keystone",
    **dict.fromkeys(
        (
            "MAX_MICROVERSION",
            "MIN_MICROVERSION",
            "AccessRule",
            "ManilaClient",
            "RetryPolicy",
            "Share",
            "share_available",
        ),
        "manila",
    ),
    **dict.fromkeys(
        (
            "HOME_SIGN_IN_FAILED",
            "HOME_UNAVAILABLE",
            "StorageOwner",
            "StorageService",
            "group_key",
            "home_key",
            "owner_from_auth_state",
            "service_for",
        ),
        "service",
    ),
    **dict.fromkeys(
        (
            "METADATA_CEPHX_ID",
            "METADATA_KEY",
            "METADATA_MANAGED",
            "ReadyShare",
            "ShareSpec",
            "ensure_share",
        ),
        "shares",
    ),
}


if not TYPE_CHECKING:  # mypy reads the imports above, and flags unknown names

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__all__ = [
    "HOME_SIGN_IN_FAILED",
    "HOME_UNAVAILABLE",
    "MAX_MICROVERSION",
    "METADATA_CEPHX_ID",
    "METADATA_KEY",
    "METADATA_MANAGED",
    "MIN_MICROVERSION",
    "AccessRule",
    "AppliedObject",
    "CephExport",
    "CsiSettings",
    "GroupShare",
    "KeystoneSession",
    "ManilaClient",
    "ManilaStorage",
    "MountedShare",
    "PodStorage",
    "ReadyShare",
    "RetryPolicy",
    "Share",
    "ShareSpec",
    "StorageConfigError",
    "StorageConflictError",
    "StorageError",
    "StorageNotFoundError",
    "StorageOwner",
    "StorageQuotaError",
    "StorageService",
    "StorageStateError",
    "StorageUnavailableError",
    "StorageVersionError",
    "apply_objects",
    "check_config",
    "choose_export",
    "ensure_object",
    "ensure_share",
    "group_key",
    "home_key",
    "object_name_for",
    "owner_from_auth_state",
    "parse_export_location",
    "parse_group_shares",
    "persistent_volume_claim_manifest",
    "persistent_volume_manifest",
    "pod_storage",
    "prepare_storage",
    "same_object",
    "secret_manifest",
    "service_for",
    "share_available",
    "storage_settings",
]
