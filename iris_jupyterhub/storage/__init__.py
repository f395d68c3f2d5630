"""Per-user and per-group CephFS storage from OpenStack Manila."""

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
from .shares import (
    METADATA_CEPHX_ID,
    METADATA_KEY,
    METADATA_MANAGED,
    ReadyShare,
    ShareSpec,
    ensure_share,
)

__all__ = [
    "MAX_MICROVERSION",
    "METADATA_CEPHX_ID",
    "METADATA_KEY",
    "METADATA_MANAGED",
    "MIN_MICROVERSION",
    "AccessRule",
    "CephExport",
    "KeystoneSession",
    "ManilaClient",
    "ReadyShare",
    "RetryPolicy",
    "Share",
    "ShareSpec",
    "StorageConfigError",
    "StorageConflictError",
    "StorageError",
    "StorageNotFoundError",
    "StorageQuotaError",
    "StorageStateError",
    "StorageUnavailableError",
    "StorageVersionError",
    "choose_export",
    "ensure_share",
    "parse_export_location",
    "share_available",
]
