"""Whole-database integrity report for :meth:`IdentityRegistry.check`.

Each check is a query, so problems are found even when a unique index was dropped and
rows were edited by hand. Duplicates across tables (a personal gid equal to a group's gid,
a user name equal to a group name) are checked too: the database cannot index those.
Duplicates are found with ``GROUP BY`` in the database and rows are streamed, so the
check runs in bounded memory on registries with millions of identities.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from . import ids
from .accounts import IdentityKey, IntegrityProblem
from .models import Group, Identity, Membership
from .names import is_valid_name

__all__ = ["find_problems"]


def _holders(session: Session, kind: str, what: str, values: Any) -> Iterator[IntegrityProblem]:
    """One problem per value of ``values`` (a query of (value, table, row id) triples)."""
    used = values.subquery()
    duplicated = select(used.c.value).group_by(used.c.value).having(func.count() > 1)
    rows = session.execute(
        select(used.c.value, used.c.source, used.c.row_id)
        .where(used.c.value.in_(duplicated))
        .order_by(used.c.value, used.c.source, used.c.row_id)
    ).all()
    grouped: dict[Any, list[tuple[str, int]]] = {}
    for value, source, row_id in rows:
        grouped.setdefault(value, []).append((source, row_id))
    for value, holders in grouped.items():
        labels, keys = [], []
        for source, row_id in holders:
            if source == "identity":
                row = session.get(Identity, row_id)
                assert row is not None  # noqa: S101 - read in this transaction
                key = IdentityKey(row.issuer, row.subject)
                keys.append(key)
                state = ", deleted" if row.deleted_at else ""
                labels.append(f"user {row.username!r} ({key}{state})")
            else:
                group = session.get(Group, row_id)
                assert group is not None  # noqa: S101 - read in this transaction
                labels.append(f"group {group.name!r} ({group.canonical!r})")
        yield IntegrityProblem(kind, f"{what} {value} is held by {', '.join(labels)}", tuple(keys))


def _identity_values(column: Any) -> Any:
    return select(
        column.label("value"), literal("identity").label("source"), Identity.id.label("row_id")
    )


def _group_values(column: Any) -> Any:
    return select(
        column.label("value"), literal("group").label("source"), Group.id.label("row_id")
    )


def _row_problems(
    session: Session, uid_range: ids.IdRange, gid_range: ids.IdRange
) -> Iterator[IntegrityProblem]:
    columns = select(
        Identity.issuer, Identity.subject, Identity.key_digest, Identity.uid,
        Identity.personal_gid, Identity.username, Identity.pinned,
    ).order_by(Identity.id)  # fmt: skip
    for issuer, subject, digest, uid, gid, username, pinned in session.execute(
        columns.execution_options(yield_per=5000)
    ):
        key = IdentityKey(issuer, subject)
        label = f"user {username!r} ({key})"
        if digest != ids.key_digest(key):
            yield IntegrityProblem(
                "key-mismatch", f"{label}: issuer/subject do not match the key digest", (key,)
            )
        if not is_valid_name(username):
            yield IntegrityProblem("invalid-name", f"{label}: invalid POSIX name", (key,))
        if not pinned and not uid_range[0] <= uid <= uid_range[1]:
            yield IntegrityProblem(
                "uid-out-of-range",
                f"{label}: uid {uid} outside IdentityRegistry.uid_range",
                (key,),
            )
        if not pinned and not gid_range[0] <= gid <= gid_range[1]:
            yield IntegrityProblem(
                "gid-out-of-range",
                f"{label}: gid {gid} outside IdentityRegistry.gid_range",
                (key,),
            )
    for group in session.scalars(select(Group).order_by(Group.id)):
        label = f"group {group.name!r} ({group.canonical!r})"
        if not is_valid_name(group.name):
            yield IntegrityProblem("invalid-name", f"{label}: invalid POSIX name")
        if not gid_range[0] <= group.gid <= gid_range[1]:
            yield IntegrityProblem(
                "gid-out-of-range", f"{label}: gid {group.gid} outside IdentityRegistry.gid_range"
            )


def find_problems(
    session: Session, uid_range: ids.IdRange, gid_range: ids.IdRange
) -> list[IntegrityProblem]:
    """Every integrity problem of the registry, in a stable order."""
    problems = list(_row_problems(session, uid_range, gid_range))
    problems += _holders(session, "duplicate-uid", "uid", _identity_values(Identity.uid))
    gids = union_all(_identity_values(Identity.personal_gid), _group_values(Group.gid))
    problems += _holders(session, "duplicate-gid", "gid", gids)
    names = union_all(_identity_values(Identity.username), _group_values(Group.name))
    problems += _holders(session, "duplicate-name", "name", names)
    digests = _identity_values(Identity.key_digest)
    problems += _holders(session, "duplicate-key", "identity digest", digests)
    orphans = (
        select(Membership.identity_id, Membership.group_id)
        .outerjoin(Identity, Identity.id == Membership.identity_id)
        .outerjoin(Group, Group.id == Membership.group_id)
        .where(Identity.id.is_(None) | Group.id.is_(None) | Identity.deleted_at.isnot(None))
    )
    for identity_id, group_id in session.execute(orphans):
        problems.append(
            IntegrityProblem(
                "orphan-membership",
                f"membership of identity #{identity_id} in group #{group_id} refers to a "
                "missing group or a missing or deleted identity",
            )
        )
    return problems
