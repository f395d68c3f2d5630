"""POSIX user and group names derived safely from untrusted hints.

A valid name matches ``[a-z_][a-z0-9_-]*`` and is at most :data:`MAX_NAME_LENGTH`
characters: the portable subset accepted by ``useradd``, Slurm, SSSD and NFS. Hints (hub
user names, canonical group names) come from identity-provider claims and are never used
unsanitised: they are folded to ASCII (NFKD), lowercased, every other character becomes
``-`` (runs collapsed, leading and trailing ones dropped) and a name that would start with a
digit gets a ``u`` (users) or ``g`` (groups) prefix. ``vo.iris.ac.uk/lsst`` becomes
``vo-iris-ac-uk-lsst``; ``../../root`` becomes ``root``, which is reserved, and so is then
handled like a taken name.

When the name is taken or reserved, a suffix derived from a hash of the identity (or
group) is appended (``alice-3f9a``), shortening the base so that the whole stays within 32
characters; longer suffixes follow if that is taken too. The result is deterministic.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator

__all__ = [
    "DEFAULT_RESERVED_NAMES",
    "MAX_NAME_LENGTH",
    "assign_name",
    "candidate_names",
    "is_valid_name",
    "sanitise_name",
]

MAX_NAME_LENGTH = 32
"""Longest POSIX name handed out (``useradd``'s portable limit)."""

_VALID_RE = re.compile(r"[a-z_][a-z0-9_-]*")
_INVALID_RUN_RE = re.compile(r"[^a-z0-9_]+")

DEFAULT_RESERVED_NAMES = frozenset(
    {
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news",
        "uucp", "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup",
        "_apt", "systemd-network", "systemd-resolve", "systemd-timesync", "messagebus",
        "sshd", "polkitd", "admin", "administrator", "adm", "wheel", "sudo", "staff",
        "users", "operator", "shadow", "utmp", "tty", "disk", "kmem", "dialout", "audio",
        "video", "cdrom", "floppy", "tape", "plugdev", "netdev", "input", "kvm", "render",
        "docker", "lxd", "postgres", "mysql", "slurm", "munge", "sssd", "ldap", "nscd",
        "ceph", "nfsnobody", "jovyan", "jupyter", "jupyterhub", "hub", "guest", "test",
        "user", "group", "ubuntu", "debian", "centos", "rocky", "ec2-user", "cloud-user",
    }
)  # fmt: skip
"""Names that are never handed out: system accounts, groups and common image users."""


@functools.lru_cache(maxsize=8192)
def is_valid_name(name: str) -> bool:
    """True if ``name`` is a valid POSIX user or group name by this module's rules."""
    # cached: every spawn checks each of the user's groups again
    return len(name) <= MAX_NAME_LENGTH and _VALID_RE.fullmatch(name) is not None


def sanitise_name(hint: str | None, prefix: str = "u") -> str:
    """A valid base name from an untrusted hint (possibly empty, then ``prefix``).

    Args:
        hint: Any text, e.g. a hub user name or a canonical group.
        prefix: ``"u"`` for users, ``"g"`` for groups: prepended when the name would
            otherwise start with a digit, and used alone when nothing usable is left.
    """
    text = (hint or "")[: 4 * MAX_NAME_LENGTH]
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _INVALID_RUN_RE.sub("-", folded.lower()).strip("-")
    if not name:
        return prefix
    if not (name[0].isalpha() or name[0] == "_"):
        name = prefix + name
    return name[:MAX_NAME_LENGTH].rstrip("-")


def candidate_names(base: str, material: bytes) -> Iterator[str]:
    """``base``, then ``base-<hash>`` with 4, 6, 8 ... hex digits from ``material``."""
    yield base[:MAX_NAME_LENGTH]
    counter = 0
    while True:
        digest = hashlib.sha256(material + counter.to_bytes(8, "big")).hexdigest()
        for width in (4, 6, 8):
            stem = base[: MAX_NAME_LENGTH - width - 1].rstrip("-")
            yield f"{stem}-{digest[:width]}"
        counter += 1


def assign_name(
    hint: str | None,
    material: bytes,
    taken: Callable[[str], bool],
    reserved: Collection[str] = DEFAULT_RESERVED_NAMES,
    *,
    prefix: str = "u",
    max_attempts: int = 1000,
) -> str:
    """The first valid candidate for ``hint`` that is neither reserved nor taken.

    Raises:
        RuntimeError: After ``max_attempts`` taken candidates (practically unreachable).
    """
    base = sanitise_name(hint, prefix)
    for attempt, name in enumerate(candidate_names(base, material)):
        if attempt >= max_attempts:
            break
        if name not in reserved and not taken(name):
            return name
    raise RuntimeError(f"no free POSIX name for hint {base!r} after {max_attempts} attempts")
