"""The login fast path: precompiled Core queries that read an account in one round trip.

:meth:`IdentityRegistry.map_identity` for a known identity and the lookups run these on a
plain connection instead of an ORM session, which keeps a lookup well below a millisecond
on SQLite. The statements use bound parameters, so SQLAlchemy compiles each one once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, or_, select
from sqlalchemy.orm import aliased

from .accounts import IdentityKey, PosixAccount, PosixGroup
from .models import Group, Identity, Membership

__all__ = ["AccountRow", "has_conflicts", "read_account", "read_checked_account"]

#: The identity's own columns, read by both account queries.
_IDENTITY_COLUMNS = (
    Identity.id,
    Identity.issuer,
    Identity.subject,
    Identity.uid,
    Identity.personal_gid,
    Identity.username,
    Identity.pinned,
    Identity.last_seen_at,
    Identity.deleted_at,
)

_ACCOUNT = (
    select(
        *_IDENTITY_COLUMNS,
        Group.name,
        Group.gid,
        Group.canonical,
    )
    .select_from(Identity)
    .outerjoin(Membership, Membership.identity_id == Identity.id)
    .outerjoin(Group, Group.id == Membership.group_id)
)
_BY_COLUMN = {
    "key_digest": _ACCOUNT.where(Identity.key_digest == bindparam("value")),
    "uid": _ACCOUNT.where(Identity.uid == bindparam("value")),
    "username": _ACCOUNT.where(Identity.username == bindparam("value")),
}

_CONFLICTS = select(
    select(Identity.id)
    .where(
        Identity.id != bindparam("id"),
        or_(
            Identity.uid == bindparam("uid"),
            Identity.username == bindparam("name"),
            Identity.personal_gid.in_(bindparam("gids", expanding=True)),
        ),
    )
    .exists(),
    select(Group.id)
    .where(or_(Group.gid == bindparam("gid"), Group.name == bindparam("name")))
    .exists(),
    select(Group.gid)
    .where(Group.gid.in_(bindparam("group_gids", expanding=True)))
    .group_by(Group.gid)
    .having(func.count() > 1)
    .exists(),
)


def _conflict_flag() -> Any:
    """:data:`_CONFLICTS` as one boolean about the ``Identity`` row of the outer query.

    One ``EXISTS`` per condition, each an index lookup (an ``OR`` of columns, or ``IN``
    a subquery inside an ``OR``, makes PostgreSQL scan the table)."""
    other, group, twin, member, joined = (
        aliased(Identity),
        aliased(Group),
        aliased(Group),
        aliased(Membership),
        aliased(Group),
    )
    not_me = other.id != Identity.id
    of_mine = (member.identity_id == Identity.id, joined.id == member.group_id)
    return or_(
        exists().where(not_me, other.uid == Identity.uid),
        exists().where(not_me, other.username == Identity.username),
        exists().where(not_me, other.personal_gid == Identity.personal_gid),
        exists().where(*of_mine, not_me, other.personal_gid == joined.gid),
        exists().where(group.gid == Identity.personal_gid),
        exists().where(group.name == Identity.username),
        exists().where(*of_mine, twin.gid == joined.gid, twin.id != joined.id),
    )


_CHECKED_IDENTITY = (
    select(
        *_IDENTITY_COLUMNS,
        _conflict_flag().label("conflict"),
    )
    .where(Identity.key_digest == bindparam("value"))
    .subquery("identity")
)
#: The login fast path in ONE statement: the identity, its groups and whether any other
#: row shares its ids (:data:`_CONFLICTS`, computed once per identity, not per group row).
_CHECKED_ACCOUNT = (
    select(
        *(c for c in _CHECKED_IDENTITY.c),
        Group.name,
        Group.gid,
        Group.canonical,
    )
    .select_from(_CHECKED_IDENTITY)
    .outerjoin(Membership, Membership.identity_id == _CHECKED_IDENTITY.c.id)
    .outerjoin(Group, Group.id == Membership.group_id)
)


@dataclass(frozen=True)
class AccountRow:
    """An identity row with its groups, as read by :func:`read_account`."""

    id: int
    account: PosixAccount
    last_seen_at: datetime | None

    @property
    def canonical_groups(self) -> list[str]:
        """The canonical names of the identity's groups, sorted."""
        return sorted(g.canonical for g in self.account.groups if g.canonical is not None)


def read_account(connection: Connection, column: str, value: Any) -> AccountRow | None:
    """The identity whose ``column`` (``key_digest``, ``uid`` or ``username``) is ``value``.

    If a tampered database holds several rows with that value, the first is returned; the
    conflict check then refuses it.
    """
    rows: Sequence[Any] = connection.execute(_BY_COLUMN[column], {"value": value}).all()
    return _account(rows) if rows else None


def read_checked_account(connection: Connection, digest: str) -> tuple[AccountRow, bool] | None:
    """The identity with key digest ``digest`` and whether another row shares its ids
    (:func:`has_conflicts`), in one statement: the login fast path's only round trip."""
    rows: Sequence[Any] = connection.execute(_CHECKED_ACCOUNT, {"value": digest}).all()
    if not rows:
        return None
    found = _account(rows)
    return found, any(bool(r.conflict) for r in rows if r.id == found.id)


def _account(rows: Sequence[Any]) -> AccountRow:
    first = rows[0]
    personal = PosixGroup(first.username, first.personal_gid, None)
    community = sorted(
        (
            PosixGroup(r.name, r.gid, r.canonical)
            for r in rows
            if r.id == first.id and r.gid is not None
        ),
        key=lambda g: g.name,
    )
    account = PosixAccount(
        key=IdentityKey(first.issuer, first.subject),
        uid=first.uid,
        gid=first.personal_gid,
        username=first.username,
        groups=(personal, *community),
        pinned=bool(first.pinned),
        deleted=first.deleted_at is not None,
    )
    return AccountRow(first.id, account, first.last_seen_at)


def has_conflicts(connection: Connection, row: AccountRow) -> bool:
    """True if any other identity or group shares ids or the name of ``row``."""
    account = row.account
    group_gids = [g.gid for g in account.groups[1:]]
    params = {
        "id": row.id,
        "uid": account.uid,
        "name": account.username,
        "gid": account.gid,
        "gids": [account.gid, *group_gids],
        "group_gids": group_gids,
    }
    return any(connection.execute(_CONFLICTS, params).one())
