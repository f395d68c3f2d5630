"""The data the registry hands out: identity keys, POSIX accounts and groups, reports.

These are small frozen dataclasses with no behaviour beyond formatting, so they can be
passed between the authenticator, the spawner and the CLI without touching the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidIdentityError

__all__ = [
    "MAX_ISSUER_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "IdentityKey",
    "ImportRecord",
    "ImportReport",
    "IntegrityProblem",
    "PinResult",
    "PosixAccount",
    "PosixGroup",
]

MAX_ISSUER_LENGTH = 255
"""Longest issuer accepted, in characters (after removing a trailing ``/``)."""

MAX_SUBJECT_LENGTH = 1024
"""Longest subject accepted, in characters."""


@dataclass(frozen=True, order=True)
class IdentityKey:
    """A person at an identity provider: the pair (issuer, subject).

    Both parts are opaque: any Unicode text (including control characters and NUL) is
    stored and compared exactly, and never used in a file path or a POSIX name. Trailing
    ``/`` are removed from the issuer, as the authenticators do.

    Raises:
        InvalidIdentityError: If a part is empty or longer than
            :data:`MAX_ISSUER_LENGTH` / :data:`MAX_SUBJECT_LENGTH` characters.
    """

    issuer: str
    subject: str

    def __post_init__(self) -> None:
        issuer = str(self.issuer).rstrip("/")
        object.__setattr__(self, "issuer", issuer)
        if not issuer or len(issuer) > MAX_ISSUER_LENGTH:
            raise InvalidIdentityError(
                f"identity issuer must be 1-{MAX_ISSUER_LENGTH} characters (got {len(issuer)})"
            )
        if not isinstance(self.subject, str) or not 0 < len(self.subject) <= MAX_SUBJECT_LENGTH:
            raise InvalidIdentityError(
                f"identity subject must be 1-{MAX_SUBJECT_LENGTH} characters of text"
            )

    def __str__(self) -> str:
        """A log-safe rendering: ``repr`` of both parts, long subjects shortened."""
        subject = self.subject if len(self.subject) <= 80 else self.subject[:77] + "..."
        return f"{subject!r}@{self.issuer!r}"


@dataclass(frozen=True)
class PosixGroup:
    """A POSIX group: name, gid and the canonical group it stands for.

    ``canonical`` is ``None`` for a person's personal group (named after the user, with
    the user's primary gid).
    """

    name: str
    gid: int
    canonical: str | None


@dataclass(frozen=True)
class PosixAccount:
    """The POSIX account of one identity.

    Attributes:
        key: The identity.
        uid: User id.
        gid: Primary group id: the personal group's gid.
        username: POSIX login name, also the personal group's name.
        groups: The personal group first, then the community groups sorted by name.
        pinned: The uid was set by an administrator (import or pin), not by hashing.
        deleted: The identity is a tombstone: its ids stay reserved for it.
    """

    key: IdentityKey
    uid: int
    gid: int
    username: str
    groups: tuple[PosixGroup, ...]
    pinned: bool = False
    deleted: bool = False

    def to_auth_state(self) -> dict[str, Any]:
        """The ``posix`` entry the authenticator stores in ``auth_state``."""
        return {
            "uid": self.uid,
            "gid": self.gid,
            "username": self.username,
            "groups": [
                {"name": g.name, "gid": g.gid, "canonical": g.canonical} for g in self.groups
            ],
        }

    def describe(self) -> str:
        """One line for reports: ``alice uid=… gid=… for <key>``."""
        return f"{self.username} uid={self.uid} gid={self.gid} for {self.key}"


@dataclass(frozen=True)
class IntegrityProblem:
    """One inconsistency found by :meth:`IdentityRegistry.check`.

    Attributes:
        kind: A short stable code, e.g. ``duplicate-uid``, ``duplicate-gid``,
            ``duplicate-name``, ``uid-out-of-range``, ``gid-out-of-range``,
            ``invalid-name``, ``orphan-membership``, ``key-mismatch``.
        detail: A sentence for the administrator.
        keys: The identities affected (empty when only groups are).
    """

    kind: str
    detail: str
    keys: tuple[IdentityKey, ...] = ()


@dataclass(frozen=True)
class PinResult:
    """What :meth:`IdentityRegistry.pin` did.

    Attributes:
        status: ``"added"`` (a new pinned identity), ``"unchanged"`` (the identity already
            had exactly these ids) or ``"conflict"`` (nothing was written).
        account: The identity's account after the call; for a conflict, the existing
            account if the identity is already known, else ``None``.
        conflicts: One sentence per reason the pin was refused.
    """

    status: Literal["added", "unchanged", "conflict"]
    account: PosixAccount | None
    conflicts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True unless the pin was refused."""
        return self.status != "conflict"


@dataclass(frozen=True)
class ImportRecord:
    """An existing site account to import: identity, uid, name, optional gid and groups.

    ``gid`` is the personal (primary) group's gid; ``None`` lets the registry choose it.
    ``groups`` are canonical group names recorded as the identity's memberships until its
    next login replaces them.
    """

    key: IdentityKey
    uid: int
    username: str | None
    gid: int | None = None
    groups: Sequence[str] = ()


@dataclass
class ImportReport:
    """Outcome of :meth:`IdentityRegistry.import_accounts`, one line per record.

    Each record is applied in its own transaction: a conflict skips that record only.
    """

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no record conflicted."""
        return not self.conflicts

    def __str__(self) -> str:
        """A one-line summary such as ``3 added, 1 unchanged, 0 conflicts``."""
        return (
            f"{len(self.added)} added, {len(self.unchanged)} unchanged, "
            f"{len(self.conflicts)} conflicts"
        )
