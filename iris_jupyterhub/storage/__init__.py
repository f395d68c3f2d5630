"""Per-user and per-group CephFS storage from OpenStack Manila."""

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
from .keystone import KeystoneSession
from .kube import AppliedObject, apply_objects, ensure_object
from .manifests import (
    CsiSettings,
    MountedShare,
    object_name_for,
    persistent_volume_claim_manifest,
    persistent_volume_manifest,
    same_object,
    secret_manifest,
)
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
from .spawner import check_config, prepare_storage, storage_settings
from .volumes import PodStorage, pod_storage

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
