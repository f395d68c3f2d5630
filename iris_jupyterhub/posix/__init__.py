"""POSIX identities for federated users: stable, collision-free uids, gids and names.

IRIS runs the same people on JupyterHub, Slurm and Open OnDemand over shared file systems
that store numeric owners, so a person must get the same uid everywhere and forever, and
two people never the same one. :class:`IdentityRegistry` guarantees that for identities
keyed on (issuer, subject), and maps canonical groups to gids the same way.

* :mod:`~iris_jupyterhub.posix.ids`: hashing into ranges and probing (pure)
* :mod:`~iris_jupyterhub.posix.names`: POSIX names from untrusted hints (pure)
* :mod:`~iris_jupyterhub.posix.registry`: the database-backed registry
* :mod:`~iris_jupyterhub.posix.database`: the shared transactions (:mod:`iris_jupyterhub.db`)
  with registry errors, and the registry's migrations
"""

from __future__ import annotations

from .accounts import (
    IdentityKey,
    ImportRecord,
    ImportReport,
    IntegrityProblem,
    PinResult,
    PosixAccount,
    PosixGroup,
)
from .bulk import BulkReport
from .errors import (
    IdentityConflictError,
    InvalidIdentityError,
    RangeExhaustedError,
    RegistryError,
    RegistryUnavailableError,
)
from .ids import assign_id, first_candidate
from .names import assign_name, is_valid_name, sanitise_name
from .registry import IdentityRegistry

__all__ = [
    "BulkReport",
    "IdentityConflictError",
    "IdentityKey",
    "IdentityRegistry",
    "ImportRecord",
    "ImportReport",
    "IntegrityProblem",
    "InvalidIdentityError",
    "PinResult",
    "PosixAccount",
    "PosixGroup",
    "RangeExhaustedError",
    "RegistryError",
    "RegistryUnavailableError",
    "assign_id",
    "assign_name",
    "first_candidate",
    "is_valid_name",
    "sanitise_name",
]
