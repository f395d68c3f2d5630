"""Pinning: give an identity the uid (and name, gid) of an existing site account.

A pin never overwrites anything. Every reason to refuse is collected and reported, and
the identity is inserted only when there is none.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import store
from .accounts import ImportRecord, PinResult
from .models import Group, Identity
from .names import is_valid_name
from .settings import MAX_POSIX_ID

__all__ = ["MIN_PINNED_ID", "pin_identity", "pinned_id_error"]

MIN_PINNED_ID = 1000
"""Smallest uid or gid that can be pinned: lower ids belong to the operating system."""


def pinned_id_error(what: str, value: int) -> str | None:
    """Why ``value`` cannot be a pinned uid or gid, or None."""
    if not MIN_PINNED_ID <= value <= MAX_POSIX_ID or value == 65534:
        return (
            f"{what} {value} is not allowed: pinned ids must be {MIN_PINNED_ID}-{MAX_POSIX_ID} "
            "and not 65534 (nobody)"
        )
    return None


def _holders(session: Session, record: ImportRecord, username: str | None) -> list[str]:
    """Conflicts with other identities and groups holding the record's uid, gid or name."""
    conflicts: list[str] = []
    for other in session.scalars(select(Identity).where(Identity.uid == record.uid)):
        conflicts.append(f"uid {record.uid} belongs to {other.username!r} ({store.key_of(other)})")
    if record.gid is not None:
        for other in session.scalars(select(Identity).where(Identity.personal_gid == record.gid)):
            conflicts.append(
                f"gid {record.gid} is the personal group of {other.username!r} "
                f"({store.key_of(other)})"
            )
        for group in session.scalars(select(Group).where(Group.gid == record.gid)):
            conflicts.append(f"gid {record.gid} belongs to group {group.name!r}")
    if username is not None and store.name_taken(session, username):
        conflicts.append(f"name {username!r} is already used by a user or group")
    return conflicts


def pin_identity(
    session: Session, record: ImportRecord, assignment: store.Assignment
) -> PinResult:
    """Insert ``record`` as a pinned identity, or report why not (nothing written then)."""
    existing = store.find_identity(session, record.key)
    if existing is not None:
        account = store.account_of(existing, store.groups_of(session, existing.id))
        same = (
            existing.uid == record.uid
            and record.gid in (None, existing.personal_gid)
            and record.username in (None, existing.username)
        )
        if same:
            return PinResult("unchanged", account)
        return PinResult(
            "conflict",
            account,
            (f"{record.key} already has uid {existing.uid}, gid {existing.personal_gid}, "
             f"name {existing.username!r}; it is not changed",),
        )  # fmt: skip
    conflicts = [
        problem
        for problem in (
            pinned_id_error("uid", record.uid),
            None if record.gid is None else pinned_id_error("gid", record.gid),
        )
        if problem
    ]
    username = record.username
    if username is not None:
        if not is_valid_name(username):
            conflicts.append(f"name {username!r} is not a valid POSIX name")
        elif username in assignment.reserved_names:
            conflicts.append(f"name {username!r} is reserved (IdentityRegistry.reserved_names)")
    conflicts += _holders(session, record, username)
    if conflicts:
        return PinResult("conflict", None, tuple(conflicts))
    row = store.create_identity(
        session,
        record.key,
        record.key.subject,
        assignment,
        uid=record.uid,
        gid=record.gid,
        username=username,
    )
    row.pinned = True
    session.flush()
    return PinResult("added", store.account_of(row, []))
