"""Registry operations inside one database session: find, assign, record, verify.

Every function here runs in a transaction opened by the caller
(:func:`~iris_jupyterhub.db.write_session` for anything that writes), so the registry
decides what is atomic. New accounts get their ids and name from :func:`assign_account`,
the one implementation used by logins (one identity, ids probed in the database) and by
bulk assignment (:mod:`~iris_jupyterhub.posix.bulk`, taken ids kept in memory). Nothing
trusts the unique indexes alone: :func:`identity_conflicts` asks the database whether
another row shares an identity's ids.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.orm import Session

from ..db import utcnow
from . import ids, names
from .accounts import IdentityKey, PosixAccount, PosixGroup
from .models import Group, Identity, Membership

__all__ = [
    "Assignment",
    "NewAccount",
    "WindowedTaken",
    "account_of",
    "assign_account",
    "create_group",
    "create_identity",
    "ensure_groups",
    "find_identity",
    "groups_of",
    "identity_conflicts",
    "identity_values",
    "key_of",
    "name_taken",
    "set_memberships",
]


@dataclass(frozen=True)
class Assignment:
    """Ranges and reserved names used when assigning new ids and names."""

    uid_range: ids.IdRange
    gid_range: ids.IdRange
    reserved_names: Collection[str]


class WindowedTaken:
    """A ``taken`` predicate for :func:`ids.assign_id` that reads the database in windows.

    Probing asks about consecutive ids; each database query loads the taken ids of the next
    ``window`` ids. When a whole window is taken, one count query checks whether the range
    is full, so exhaustion is detected without walking a large range id by id.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], set[int]],
        count: Callable[[], int],
        id_range: ids.IdRange,
        what: str,
        window: int = 512,
    ) -> None:
        self._fetch, self._count, self._range, self._what = fetch, count, id_range, what
        self._window = window
        self._lo, self._hi, self._values = 1, 0, set[int]()
        self._checked_full = False

    def __call__(self, value: int) -> bool:
        """True if ``value`` is already used."""
        if not self._lo <= value <= self._hi:
            self._lo, self._hi = value, min(value + self._window - 1, self._range[1])
            self._values = self._fetch(self._lo, self._hi)
            full_window = len(self._values) >= self._hi - self._lo + 1
            if full_window and not self._checked_full:
                self._checked_full = True
                if self._count() >= self._range[1] - self._range[0] + 1:
                    raise ids.range_exhausted(self._what, self._range)
        return value in self._values


def _uid_window(session: Session, id_range: ids.IdRange) -> WindowedTaken:
    def fetch(lo: int, hi: int) -> set[int]:
        return set(session.scalars(select(Identity.uid).where(Identity.uid.between(lo, hi))))

    def count() -> int:
        query = select(func.count(func.distinct(Identity.uid))).where(
            Identity.uid.between(*id_range)
        )
        return session.scalar(query) or 0

    return WindowedTaken(fetch, count, id_range, "uid")


def _gid_window(session: Session, id_range: ids.IdRange) -> WindowedTaken:
    def fetch(lo: int, hi: int) -> set[int]:
        personal = session.scalars(
            select(Identity.personal_gid).where(Identity.personal_gid.between(lo, hi))
        )
        groups = session.scalars(select(Group.gid).where(Group.gid.between(lo, hi)))
        return set(personal) | set(groups)

    def count() -> int:
        used = union(
            select(Identity.personal_gid.label("gid")).where(
                Identity.personal_gid.between(*id_range)
            ),
            select(Group.gid.label("gid")).where(Group.gid.between(*id_range)),
        ).subquery()
        return session.scalar(select(func.count()).select_from(used)) or 0

    return WindowedTaken(fetch, count, id_range, "gid")


def name_taken(session: Session, name: str) -> bool:
    """True if a user or a group (personal groups share the user's name) has ``name``."""
    query = select(
        select(Identity.id).where(Identity.username == name).exists()
        | select(Group.id).where(Group.name == name).exists()
    )
    return bool(session.scalar(query))


def find_identity(session: Session, key: IdentityKey) -> Identity | None:
    """The row of ``key`` (live or deleted), by its indexed digest."""
    return session.scalars(
        select(Identity).where(Identity.key_digest == ids.key_digest(key))
    ).first()


def key_of(row: Identity) -> IdentityKey:
    """The identity key stored in ``row``."""
    return IdentityKey(row.issuer, row.subject)


def groups_of(session: Session, identity_id: int) -> list[Group]:
    """The community groups an identity is currently a member of."""
    query = (
        select(Group)
        .join(Membership, Membership.group_id == Group.id)
        .where(Membership.identity_id == identity_id)
    )
    return list(session.scalars(query))


def account_of(row: Identity, groups: Iterable[Group]) -> PosixAccount:
    """The :class:`PosixAccount` of ``row``: personal group first, then groups by name."""
    personal = PosixGroup(row.username, row.personal_gid, None)
    community = sorted(
        (PosixGroup(g.name, g.gid, g.canonical) for g in groups), key=lambda g: g.name
    )
    return PosixAccount(
        key=key_of(row),
        uid=row.uid,
        gid=row.personal_gid,
        username=row.username,
        groups=(personal, *community),
        pinned=row.pinned,
        deleted=row.deleted_at is not None,
    )


class NewAccount(NamedTuple):
    """The uid, personal gid and login name given to a new identity.

    ``uid_probed`` / ``gid_probed``: the hashed first candidate was taken, so the id was
    found by probing (counted by bulk assignment).
    """

    uid: int
    gid: int
    username: str
    uid_probed: bool = False
    gid_probed: bool = False


def assign_account(
    key: IdentityKey,
    name_hint: str | None,
    assignment: Assignment,
    *,
    uid_taken: Callable[[int], bool],
    gid_taken: Callable[[int], bool],
    name_taken: Callable[[str], bool],
    uid: int | None = None,
    gid: int | None = None,
    username: str | None = None,
) -> NewAccount:
    """Ids and name for a new identity; those not given are hashed and probed.

    The uid is hashed from the key (:data:`ids.UID_TAG`) and probed past ``uid_taken``,
    the personal gid likewise (:data:`ids.PERSONAL_GID_TAG`, ``gid_taken``), and the name
    derived from ``name_hint`` with a suffix from the uid's hash input when
    ``name_taken`` or reserved. Pure: the predicates say what is already used.
    """
    uid_material = ids.key_material(ids.UID_TAG, key)
    uid_probed = gid_probed = False
    if uid is None:
        uid = ids.assign_id(uid_material, assignment.uid_range, uid_taken)
        uid_probed = uid != ids.first_candidate(uid_material, assignment.uid_range)
    if gid is None:
        gid_material = ids.key_material(ids.PERSONAL_GID_TAG, key)
        gid = ids.assign_id(gid_material, assignment.gid_range, gid_taken, what="gid")
        gid_probed = gid != ids.first_candidate(gid_material, assignment.gid_range)
    if username is None:
        username = names.assign_name(
            name_hint, uid_material, name_taken, assignment.reserved_names
        )
    return NewAccount(uid, gid, username, uid_probed, gid_probed)


def identity_values(
    key: IdentityKey, account: NewAccount, now: datetime, digest: str | None = None
) -> dict[str, Any]:
    """The column values of a new, unpinned :class:`Identity` row (``digest``: if known)."""
    return {
        "key_digest": digest or ids.key_digest(key),
        "issuer": key.issuer,
        "subject": key.subject,
        "uid": account.uid,
        "personal_gid": account.gid,
        "username": account.username,
        "pinned": False,
        "created_at": now,
    }


def create_identity(
    session: Session,
    key: IdentityKey,
    name_hint: str | None,
    assignment: Assignment,
    *,
    uid: int | None = None,
    gid: int | None = None,
    username: str | None = None,
) -> Identity:
    """Insert a new identity; ids and name not given come from :func:`assign_account`."""
    account = assign_account(
        key,
        name_hint,
        assignment,
        uid_taken=_uid_window(session, assignment.uid_range),
        gid_taken=_gid_window(session, assignment.gid_range),
        name_taken=lambda name: name_taken(session, name),
        uid=uid,
        gid=gid,
        username=username,
    )
    row = Identity(**identity_values(key, account, utcnow()))
    session.add(row)
    session.flush()
    return row


def create_group(session: Session, canonical: str, assignment: Assignment) -> Group:
    """Insert a new group with a hashed gid and a name derived from ``canonical``."""
    material = ids.group_material(canonical)
    gid = ids.assign_id(
        material, assignment.gid_range, _gid_window(session, assignment.gid_range), what="gid"
    )
    name = names.assign_name(
        canonical,
        material,
        lambda candidate: name_taken(session, candidate),
        assignment.reserved_names,
        prefix="g",
    )
    row = Group(canonical=canonical, name=name, gid=gid, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def ensure_groups(
    session: Session, canonicals: Collection[str], assignment: Assignment
) -> list[Group]:
    """The rows of ``canonicals``, creating missing ones in sorted (deterministic) order."""
    if not canonicals:
        return []
    existing = {
        g.canonical: g
        for g in session.scalars(select(Group).where(Group.canonical.in_(canonicals)))
    }
    for canonical in sorted(set(canonicals) - existing.keys()):
        existing[canonical] = create_group(session, canonical, assignment)
    return [existing[c] for c in sorted(set(canonicals))]


def set_memberships(session: Session, row: Identity, groups: Collection[Group]) -> None:
    """Replace the identity's memberships with exactly ``groups``."""
    wanted = {g.id for g in groups}
    current = set(
        session.scalars(select(Membership.group_id).where(Membership.identity_id == row.id))
    )
    if current - wanted:
        session.execute(
            delete(Membership).where(
                Membership.identity_id == row.id, Membership.group_id.in_(current - wanted)
            )
        )
    for group_id in sorted(wanted - current):
        session.add(Membership(identity_id=row.id, group_id=group_id))
    session.flush()


def identity_conflicts(session: Session, row: Identity, group_gids: Collection[int]) -> list[str]:
    """Why ``row`` must not be used: other rows sharing its uid, gids or name (or ``[]``)."""
    problems: list[str] = []
    gids = {row.personal_gid, *group_gids}
    clash = or_(
        Identity.uid == row.uid,
        Identity.username == row.username,
        Identity.personal_gid.in_(gids),
    )
    for other in session.scalars(select(Identity).where(clash, Identity.id != row.id)):
        shared = [
            label
            for label, same in (
                (f"uid {row.uid}", other.uid == row.uid),
                (f"name {row.username!r}", other.username == row.username),
                (f"gid {other.personal_gid}", other.personal_gid in gids),
            )
            if same
        ]
        state = "deleted identity" if other.deleted_at else "identity"
        problems.append(f"{', '.join(shared)} also held by {state} {key_of(other)}")
    group_clash = or_(Group.gid == row.personal_gid, Group.name == row.username)
    for group in session.scalars(select(Group).where(group_clash)):
        problems.append(f"personal group of {row.username!r} clashes with group {group.name!r}")
    query = (
        select(Group.gid)
        .where(Group.gid.in_(group_gids))
        .group_by(Group.gid)
        .having(func.count() > 1)
    )
    problems.extend(f"gid {gid} is held by several groups" for gid in session.scalars(query))
    return problems
