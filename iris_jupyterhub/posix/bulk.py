"""Assign accounts to many identities at once, in memory, for imports and benchmarks.

The taken uids, gids and names are read once and kept in memory; each new identity gets
its ids and name from :func:`~iris_jupyterhub.posix.store.assign_account`, the function
:meth:`IdentityRegistry.map_identity` uses, and the rows are inserted in batches. The
caller holds the registry's write lock for the whole run, so the result equals mapping
the identities one by one in the given order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ..db import utcnow
from . import ids, names
from .accounts import IdentityKey
from .models import Group, Identity
from .store import Assignment, assign_account, identity_values

__all__ = ["BulkReport", "assign_many"]


@dataclass
class BulkReport:
    """Counts from :func:`assign_many`.

    Attributes:
        created: New identities inserted.
        existing: Identities already known (left unchanged).
        uid_collisions: New identities whose hashed uid was taken (resolved by probing).
        gid_collisions: Same for the personal gid.
        name_collisions: New identities that got a suffixed name.
    """

    created: int = 0
    existing: int = 0
    uid_collisions: int = 0
    gid_collisions: int = 0
    name_collisions: int = 0


def _batches(
    items: Iterable[tuple[IdentityKey, str | None]], size: int
) -> Iterator[list[tuple[IdentityKey, str | None]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def assign_many(
    session: Session,
    items: Iterable[tuple[IdentityKey, str | None]],
    assignment: Assignment,
    batch_size: int = 5000,
) -> BulkReport:
    """Insert every identity of ``items`` (key, name hint) that is not yet known."""
    report = BulkReport()
    uids = set(session.scalars(select(Identity.uid)))
    gids = set(session.scalars(select(Identity.personal_gid)))
    gids |= set(session.scalars(select(Group.gid)))
    taken_names = set(session.scalars(select(Identity.username)))
    taken_names |= set(session.scalars(select(Group.name)))
    for batch in _batches(items, batch_size):
        digests = {ids.key_digest(key): (key, hint) for key, hint in batch}
        known: set[str] = set()
        for start in range(0, len(digests), 500):
            chunk = list(digests)[start : start + 500]
            known |= set(
                session.scalars(select(Identity.key_digest).where(Identity.key_digest.in_(chunk)))
            )
        report.existing += len(known)
        rows = []
        now = utcnow()
        for digest, (key, hint) in digests.items():
            if digest in known:
                continue
            account = assign_account(
                key,
                hint,
                assignment,
                uid_taken=uids.__contains__,
                gid_taken=gids.__contains__,
                name_taken=taken_names.__contains__,
            )
            report.uid_collisions += account.uid_probed
            report.gid_collisions += account.gid_probed
            report.name_collisions += account.username != names.sanitise_name(hint)
            uids.add(account.uid)
            gids.add(account.gid)
            taken_names.add(account.username)
            rows.append(identity_values(key, account, now, digest))
        if rows:
            session.execute(insert(Identity), rows)
        report.created += len(rows)
    return report
