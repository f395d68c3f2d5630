"""Configuration of the identity registry: every option, with its documentation.

:class:`RegistrySettings` holds the traits of
:class:`~iris_jupyterhub.posix.IdentityRegistry`; they are set as
``c.IdentityRegistry.<option>`` and checked when the registry is created, so a mistake
fails at hub start-up with a message that names the option.
"""

from __future__ import annotations

from typing import Any

from traitlets import Dict, Float, Int, Set, Tuple, Unicode, validate
from traitlets.config import Configurable

from ..db import check_db_url
from ..groups import group_name_error
from .names import DEFAULT_RESERVED_NAMES

__all__ = ["MAX_POSIX_ID", "SYSTEM_ID_MAX", "RegistrySettings"]

MAX_POSIX_ID = 2**31 - 2
"""Largest id handed out: fits tools that store ids as 32-bit signed integers."""

SYSTEM_ID_MAX = 65535
"""Ids up to this value (system accounts, ``nobody`` 65534) are never handed out."""


def _range_error(name: str, value: Any) -> tuple[int, int]:
    start, end = (int(v) for v in value)
    if start > end:
        raise ValueError(f"IdentityRegistry.{name} must have start <= end (got {start}-{end})")
    if start <= SYSTEM_ID_MAX or end > MAX_POSIX_ID:
        raise ValueError(
            f"IdentityRegistry.{name} must lie within {SYSTEM_ID_MAX + 1}-{MAX_POSIX_ID} "
            f"(above reserved system ids, below 2**31-1), got {start}-{end}"
        )
    return start, end


class RegistrySettings(Configurable):
    """Options of the identity registry."""

    db_url = Unicode(
        "",
        config=True,
        help="""
        SQLAlchemy URL of the registry database.

        Empty (the default): the SQLite file ``iris-identities.sqlite`` beside the hub's
        SQLite database (``c.JupyterHub.db_url``), or in the hub's working directory when
        the hub's database is not SQLite; the ``iris-jupyterhub`` commands given the hub's
        configuration (``--config``) open the same file. Use
        ``postgresql+psycopg://user@host/db`` in production and whenever several hub
        replicas share one registry. The schema is created and upgraded automatically.
        """,
    )

    @validate("db_url")
    def _validate_db_url(self, proposal: Any) -> str:
        return check_db_url(str(proposal.value), "IdentityRegistry.db_url")

    uid_range = Tuple(
        Int(),
        Int(),
        default_value=(2_001_000_000, 2_069_999_999),
        config=True,
        help="""
        Inclusive range of uids given to new identities, as ``(first, last)``.

        The default lies above systemd's regular (1000-60000) and container
        (524288-1879048191) ranges and SSSD's default ID-mapping range
        (200000-2000200000), and below 2**31-1 so that tools storing ids as 32-bit signed
        integers (NFS, CephFS, old C libraries) are safe. It must not overlap
        ``gid_range`` or the system ids 0-65535. Ids already given out are never changed:
        shrinking the range later only makes ``posix check`` report the ones outside it.
        """,
    )

    gid_range = Tuple(
        Int(),
        Int(),
        default_value=(2_070_000_000, 2_139_999_999),
        config=True,
        help="""
        Inclusive range of gids given to personal and community groups, as
        ``(first, last)``. Same rules and rationale as ``uid_range``, which it must not
        overlap.
        """,
    )

    @validate("uid_range", "gid_range")
    def _validate_range(self, proposal: Any) -> tuple[int, int]:
        name = proposal.trait.name
        start, end = _range_error(name, proposal.value)
        other_name = "gid_range" if name == "uid_range" else "uid_range"
        other_start, other_end = getattr(self, other_name)
        if start <= other_end and other_start <= end:
            raise ValueError(
                f"IdentityRegistry.{name} {start}-{end} overlaps "
                f"IdentityRegistry.{other_name} {other_start}-{other_end}"
            )
        return start, end

    group_aliases = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""
        Canonical groups that are the same community as another, e.g.
        ``{"vo.iris.ac.uk": "iris"}`` for a Check-in VO and an IAM group.

        An alias and its target share one gid and one POSIX group (named after the
        target). Only the exact group is aliased: list sub-groups separately
        (``"vo.iris.ac.uk/lsst": "iris/lsst"``). A target must not itself be an alias.
        """,
    )

    @validate("group_aliases")
    def _validate_group_aliases(self, proposal: Any) -> dict[str, str]:
        aliases = dict(proposal.value)
        for alias, target in aliases.items():
            for group in (alias, target):
                problem = group_name_error(group)
                if problem:
                    raise ValueError(f"IdentityRegistry.group_aliases: {group!r}: {problem}")
            if target in aliases:
                raise ValueError(
                    f"IdentityRegistry.group_aliases: target {target!r} of {alias!r} is "
                    "itself an alias; point both at the same final group"
                )
        return aliases

    reserved_names = Set(
        Unicode(),
        default_value=set(DEFAULT_RESERVED_NAMES),
        config=True,
        help="""
        POSIX user and group names never handed out (system accounts, common image users
        such as ``jovyan``). A person whose name hint is reserved gets a suffixed name,
        e.g. ``root-3f9a``. Add to the default with ``c.IdentityRegistry.reserved_names
        |= {...}``.
        """,
    )

    @validate("reserved_names")
    def _validate_reserved_names(self, proposal: Any) -> set[str]:
        return {str(name).lower() for name in proposal.value}

    connect_timeout = Float(
        10.0,
        config=True,
        help="""
        Seconds to wait for a connection to the registry database before the login fails
        with "try again later" (HTTP 503). PostgreSQL rounds up to whole seconds (at least 2).
        """,
    )

    lock_timeout = Float(
        10.0,
        config=True,
        help="""
        Seconds to wait for another hub process's write (a new identity or group being
        assigned) before the login fails with "try again later" (HTTP 503). Logins of known
        identities whose groups did not change only read and are not delayed by writes.
        """,
    )

    @validate("connect_timeout", "lock_timeout")
    def _validate_timeout(self, proposal: Any) -> float:
        value = float(proposal.value)
        if not 0 < value <= 3600:
            raise ValueError(
                f"IdentityRegistry.{proposal.trait.name} must be 0-3600 seconds (got {value})"
            )
        return value

    last_seen_interval = Float(
        3600.0,
        config=True,
        help="""
        Seconds between updates of an identity's ``last_seen_at``. A login within this
        interval of the last update writes nothing when the groups did not change.
        """,
    )

    @validate("last_seen_interval")
    def _validate_last_seen_interval(self, proposal: Any) -> float:
        value = float(proposal.value)
        if value < 0:
            raise ValueError("IdentityRegistry.last_seen_interval must be >= 0 seconds")
        return value
