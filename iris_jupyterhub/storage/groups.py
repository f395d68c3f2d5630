"""Group shares and mount paths as administrators write them in ``ManilaStorage``.

Pure checks: :func:`parse_group_shares` turns ``ManilaStorage.group_shares`` into
:class:`GroupShare` objects with the defaults filled in, or raises :class:`ValueError`
saying what is wrong.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from ..groups import membership_from_string

__all__ = [
    "GroupShare",
    "check_home_overlap",
    "check_mount_path",
    "default_group_mount_path",
    "overlapping",
    "parse_group_shares",
]

_GROUP_SHARE_KEYS = ("size_gb", "mount_path", "share_type", "read_only")
_SYSTEM_DIRS = ("/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/lib", "/var/run")


@dataclass(frozen=True)
class GroupShare:
    """One entry of ``ManilaStorage.group_shares``, checked and with defaults filled in."""

    group: str
    size_gb: int
    mount_path: str
    share_type: str | None
    read_only: bool = False


def check_mount_path(value: object, what: str) -> str:
    """``value`` as a normalised absolute path; ``ValueError`` starting with ``what``."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"{what}: must be an absolute path like /shared/lsst, not {value!r}")
    normal = posixpath.normpath(value)
    if normal != value.rstrip("/") or ".." in value.split("/") or normal in ("/", "//"):
        raise ValueError(f"{what}: {value!r} must be a normalised absolute path below /")
    if normal in _SYSTEM_DIRS:
        raise ValueError(f"{what}: {value!r} would hide a system directory")
    return normal


def overlapping(a: str, b: str) -> bool:
    """Whether one path is, or is inside, the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def default_group_mount_path(group: str) -> str:
    """``/shared/<group>`` with ``/`` as ``-`` (no share is ever mounted inside another)."""
    return "/shared/" + group.replace("/", "-")


def parse_group_shares(value: object) -> dict[str, GroupShare]:
    """Check a ``group_shares`` mapping; raise :class:`ValueError` saying what is wrong."""
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of canonical group -> settings")
    shares: dict[str, GroupShare] = {}
    for group, spec in value.items():
        if not isinstance(group, str):
            raise ValueError(f"group {group!r} must be a string")
        membership = membership_from_string(group)  # ValueError explains the syntax
        if membership.role is not None:
            raise ValueError(f"{group!r}: a share belongs to a group, not to a role")
        if not isinstance(spec, Mapping):
            raise ValueError(f"{group!r}: settings must be a mapping like {{'size_gb': 100}}")
        unknown = sorted(set(spec) - set(_GROUP_SHARE_KEYS))
        if unknown:
            raise ValueError(f"{group!r}: unknown keys {unknown} (known: {_GROUP_SHARE_KEYS})")
        size = spec.get("size_gb")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{group!r}: size_gb must be a whole number >= 1, not {size!r}")
        share_type = spec.get("share_type")
        if share_type is not None and (not isinstance(share_type, str) or not share_type):
            raise ValueError(f"{group!r}: share_type must be a non-empty string")
        read_only = spec.get("read_only", False)
        if not isinstance(read_only, bool):
            raise ValueError(f"{group!r}: read_only must be true or false")
        path = check_mount_path(
            spec.get("mount_path", default_group_mount_path(group)), f"{group!r}: mount_path"
        )
        for other in shares.values():
            if overlapping(path, other.mount_path):
                raise ValueError(
                    f"{group!r}: mount_path {path} overlaps {other.group!r} ({other.mount_path})"
                )
        shares[group] = GroupShare(group, size, path, share_type, read_only)
    return shares


def check_home_overlap(shares: Mapping[str, GroupShare], home_mount_path: str) -> None:
    """Refuse group shares at or below a home (``{username}``: any user's home)."""
    fixed, templated, _ = home_mount_path.partition("{username}")
    for share in shares.values():
        below_homes = templated and (share.mount_path + "/").startswith(fixed)
        if below_homes or overlapping(home_mount_path, share.mount_path):
            raise ValueError(
                f"mount_path {share.mount_path} of {share.group!r} overlaps "
                f"home_mount_path {home_mount_path}"
            )
