"""The identity registry: permanent, collision-free POSIX accounts for federated identities.

:class:`IdentityRegistry` maps an identity (issuer, subject) to a uid, a personal group and
a login name, and canonical groups to gids, the first time it sees them; afterwards it
returns the same answer forever, on every hub replica sharing the database. New ids are
hashed from the key (:mod:`~iris_jupyterhub.posix.ids`), so independent deployments agree
for almost everyone, and probed past collisions, so nobody ever shares an id. Deleted
identities stay as tombstones: their ids are never handed to anyone else, and the same
identity gets them back if it returns.

Typical use, from the authenticator on every login and refresh::

    registry = IdentityRegistry(parent=authenticator, db_url=...)
    account = registry.map_identity(IdentityKey(issuer, sub), username, groups)
    auth_state["posix"] = account.to_auth_state()
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select
from traitlets.config import LoggingConfigurable

from .. import db
from ..db import utcnow
from ..groups import group_name_error
from . import store
from .accounts import (
    IdentityKey,
    ImportRecord,
    ImportReport,
    IntegrityProblem,
    PinResult,
    PosixAccount,
    PosixGroup,
)
from .bulk import BulkReport, assign_many
from .database import (
    read_connection,
    read_session,
    registry_errors,
    upgrade_registry,
    write_session,
)
from .errors import IdentityConflictError, RegistryError, RegistryUnavailableError
from .ids import key_digest
from .integrity import find_problems
from .models import Group, Identity, Membership
from .pinning import pin_identity
from .queries import AccountRow, read_account, read_checked_account
from .settings import RegistrySettings

__all__ = ["IdentityRegistry"]


def _unchanged(found: AccountRow, canonicals: list[str], stale_before: datetime) -> bool:
    """True if a login needs no write: live, seen recently, same groups."""
    return (
        not found.account.deleted
        and found.last_seen_at is not None
        and found.last_seen_at > stale_before
        and found.canonical_groups == canonicals
    )


class IdentityRegistry(RegistrySettings, LoggingConfigurable):
    """Permanent POSIX accounts (uid, gid, name, groups) for federated identities.

    All methods are synchronous and thread-safe; each call is one database transaction.
    Failures raise :class:`~iris_jupyterhub.posix.RegistryError` subclasses whose
    ``user_message`` can be shown to the researcher.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._engine_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL in use: ``db_url``, else :func:`iris_jupyterhub.db.registry_db_url`."""
        return self.db_url or db.registry_db_url(self.config)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created and migrated to the latest schema at first use."""
        with self._engine_lock:
            if self._engine is None:
                engine = db.make_engine(
                    self.url, connect_timeout=self.connect_timeout, lock_timeout=self.lock_timeout
                )
                try:
                    upgrade_registry(engine)
                except BaseException:
                    engine.dispose()
                    raise
                self._engine = engine
            return self._engine

    @property
    def _reader(self) -> Engine:
        """A second engine on the same database for the login fast path (one statement,
        autocommit; see :func:`iris_jupyterhub.db.read_once`), made after :attr:`engine`
        has migrated the schema."""
        engine = self.engine
        with self._engine_lock:
            if self._reader_engine is None:
                self._reader_engine = db.make_engine(
                    str(engine.url.render_as_string(hide_password=False)),
                    connect_timeout=self.connect_timeout,
                    lock_timeout=self.lock_timeout,
                    single_reads=True,
                )
            return self._reader_engine

    def close(self) -> None:
        """Close every database connection (the registry reconnects if used again)."""
        with self._engine_lock:
            for engine in (self._engine, self._reader_engine):
                if engine is not None:
                    engine.dispose()
            self._engine = self._reader_engine = None

    @property
    def _assignment(self) -> store.Assignment:
        return store.Assignment(self.uid_range, self.gid_range, frozenset(self.reserved_names))

    def canonical_groups(self, groups: Iterable[str]) -> list[str]:
        """Valid groups after ``group_aliases``, sorted, without duplicates; others logged."""
        result: set[str] = set()
        for group in groups:
            problem = group_name_error(group) if isinstance(group, str) else "not text"
            if problem:
                self.log.warning("Identity registry: skipping group %r: %s", group, problem)
                continue
            result.add(self.group_aliases.get(group, group))
        return sorted(result)

    def _explain_conflicts(self, identity_id: int) -> None:
        """Raise :class:`IdentityConflictError` saying which rows share the identity's ids."""
        with read_session(self.engine, "checking an identity") as session:
            row = session.get(Identity, identity_id)
            if row is not None:
                self._refuse_conflicts(session, row, store.groups_of(session, row.id))
        raise IdentityConflictError(f"identity #{identity_id} conflicts with another row")

    def _refuse_conflicts(self, session: Any, row: Identity, groups: list[Group]) -> None:
        problems = store.identity_conflicts(session, row, [g.gid for g in groups])
        if problems:
            message = f"identity {store.key_of(row)} refused: " + "; ".join(problems)
            self.log.error("Identity registry: %s (run `iris-jupyterhub posix check`)", message)
            raise IdentityConflictError(message)

    # -- mapping ----------------------------------------------------------------

    def map_identity(
        self, key: IdentityKey, name_hint: str | None, groups: Iterable[str]
    ) -> PosixAccount:
        """The account of ``key`` with its current ``groups``, created on first sight.

        Idempotent; meant for every login and refresh. A new identity gets a uid, a personal
        group and a login name derived from ``name_hint``; each canonical group (role
        stripped, e.g. ``"iris/lsst"``) gets a gid the first time it is seen; the identity's
        memberships are replaced by ``groups``. A deleted identity is revived with its old
        ids. A known identity whose groups did not change costs ONE statement (the account
        and its conflict check; no lock, no write).

        Raises:
            IdentityConflictError: Another identity or group shares this identity's ids.
            RangeExhaustedError: No id left in ``uid_range`` or ``gid_range``.
            RegistryUnavailableError: The database is down or locked for too long.
        """
        canonicals = self.canonical_groups(groups)
        engine = self.engine
        stale_before = utcnow() - timedelta(seconds=self.last_seen_interval)
        digest = key_digest(key)
        with registry_errors():  # ONE statement: the account and its conflict check
            checked = db.read_once(
                self._reader, "reading an identity", lambda c: read_checked_account(c, digest)
            )
        found, clash = checked if checked else (None, False)
        if found is not None and _unchanged(found, canonicals, stale_before):
            if clash:
                self._explain_conflicts(found.id)
            return found.account
        with write_session(engine, "mapping an identity") as session:
            row = store.find_identity(session, key)
            if row is None:
                row = store.create_identity(session, key, name_hint, self._assignment)
                self.log.info(
                    "Identity registry: new account %s uid=%d gid=%d for %s",
                    row.username,
                    row.uid,
                    row.personal_gid,
                    key,
                )
            elif row.deleted_at is not None:
                row.deleted_at = None
                self.log.info("Identity registry: revived %s uid=%d", row.username, row.uid)
            group_rows = store.ensure_groups(session, canonicals, self._assignment)
            store.set_memberships(session, row, group_rows)
            row.last_seen_at = utcnow()
            session.flush()
            self._refuse_conflicts(session, row, group_rows)
            return store.account_of(row, group_rows)

    def assign_many(
        self, identities: Iterable[tuple[IdentityKey, str | None]], batch_size: int = 5000
    ) -> BulkReport:
        """Create accounts for many identities in one transaction (imports, benchmarks).

        Holds the write lock for the whole run, so new logins wait: run it off-hours.
        Existing identities are left unchanged. Groups are not touched.
        """
        with write_session(self.engine, "assigning identities in bulk") as session:
            return assign_many(session, identities, self._assignment, batch_size)

    # -- lookups ----------------------------------------------------------------

    def _lookup(self, column: str, value: Any, include_deleted: bool) -> PosixAccount | None:
        with read_connection(self.engine, "looking up an identity") as connection:
            found = read_account(connection, column, value)
        if found is None or (found.account.deleted and not include_deleted):
            return None
        return found.account

    def lookup(self, key: IdentityKey, include_deleted: bool = False) -> PosixAccount | None:
        """The account of ``key``, or None if unknown (or deleted, unless asked for)."""
        return self._lookup("key_digest", key_digest(key), include_deleted)

    def lookup_uid(self, uid: int, include_deleted: bool = False) -> PosixAccount | None:
        """The account holding ``uid``, or None."""
        return self._lookup("uid", uid, include_deleted)

    def lookup_username(self, name: str, include_deleted: bool = False) -> PosixAccount | None:
        """The account whose login name is ``name``, or None."""
        return self._lookup("username", name, include_deleted)

    # -- administration ---------------------------------------------------------

    def delete_identity(self, key: IdentityKey) -> bool:
        """Tombstone ``key``: memberships dropped, ids and name kept reserved for it.

        Returns:
            True if a live identity was deleted, False if it was unknown or already deleted.
        """
        with write_session(self.engine, "deleting an identity") as session:
            row = store.find_identity(session, key)
            if row is None or row.deleted_at is not None:
                return False
            row.deleted_at = utcnow()
            session.execute(delete(Membership).where(Membership.identity_id == row.id))
            self.log.info(
                "Identity registry: deleted %s uid=%d (tombstone)", row.username, row.uid
            )
            return True

    def pin(
        self, key: IdentityKey, uid: int, username: str | None = None, gid: int | None = None
    ) -> PinResult:
        """Give ``key`` an existing site account's uid (and name, personal gid).

        Conflicts (the identity already has other ids; the uid, gid or name belongs to
        someone else; an invalid or reserved value) are reported in the result and nothing
        is written. A pinned uid or gid may lie outside the configured ranges but not in
        the system ids (below 1000, 65534) or above 2**31-2. Without ``username`` the name
        is derived from the subject; without ``gid`` the personal gid is hashed as usual.
        """
        return self._pin(ImportRecord(key, uid, username, gid))

    def _pin(self, record: ImportRecord) -> PinResult:
        with write_session(self.engine, "pinning an identity") as session:
            result = pin_identity(session, record, self._assignment)
            if result.status == "added" and record.groups:
                row = store.find_identity(session, record.key)
                assert row is not None  # noqa: S101 - just inserted in this transaction
                group_rows = store.ensure_groups(
                    session, self.canonical_groups(record.groups), self._assignment
                )
                store.set_memberships(session, row, group_rows)
                result = PinResult("added", store.account_of(row, group_rows))
            return result

    def import_accounts(self, records: Iterable[ImportRecord]) -> ImportReport:
        """Pin many existing accounts, each record in its own transaction.

        A conflicting record is reported and skipped; the others are applied. A database
        outage stops the import (records before it stay applied) and is raised.
        """
        report = ImportReport()
        for record in records:
            try:
                result = self._pin(record)
            except RegistryUnavailableError:
                raise
            except RegistryError as error:
                report.conflicts.append(f"{record.key}: {error}")
                continue
            if result.status == "conflict":
                report.conflicts.append(f"{record.key}: " + "; ".join(result.conflicts))
            elif result.account is not None:
                target = report.added if result.status == "added" else report.unchanged
                target.append(result.account.describe())
        return report

    def iter_accounts(self, include_deleted: bool = False) -> Iterator[PosixAccount]:
        """Every account in uid order (tombstones too if asked), with its groups."""
        with read_session(self.engine, "listing accounts") as session:
            groups = {g.id: g for g in session.scalars(select(Group))}
            members: dict[int, list[Group]] = {}
            for identity_id, group_id in session.execute(
                select(Membership.identity_id, Membership.group_id)
            ):
                members.setdefault(identity_id, []).append(groups[group_id])
            query = select(Identity).order_by(Identity.uid)
            if not include_deleted:
                query = query.where(Identity.deleted_at.is_(None))
            for row in session.scalars(query).yield_per(2000):
                yield store.account_of(row, members.get(row.id, []))

    def iter_groups(self, include_personal: bool = True) -> Iterator[tuple[PosixGroup, list[str]]]:
        """Every group with its members' login names, for an ``/etc/group`` export.

        Community groups come first, sorted by name, with the live members' names sorted;
        then (unless ``include_personal`` is false) each live user's personal group, in uid
        order, whose one member is the user.
        """
        with read_session(self.engine, "listing groups") as session:
            query = (
                select(Group, Identity.username)
                .outerjoin(Membership, Membership.group_id == Group.id)
                .outerjoin(
                    Identity,
                    (Identity.id == Membership.identity_id) & Identity.deleted_at.is_(None),
                )
                .order_by(Group.name, Identity.username)
            )
            current: Group | None = None
            names: list[str] = []
            for group, username in session.execute(query):
                if current is not None and group.id != current.id:
                    yield PosixGroup(current.name, current.gid, current.canonical), names
                    names = []
                current = group
                if username is not None:
                    names.append(username)
            if current is not None:
                yield PosixGroup(current.name, current.gid, current.canonical), names
            if include_personal:
                personal = (
                    select(Identity.username, Identity.personal_gid)
                    .where(Identity.deleted_at.is_(None))
                    .order_by(Identity.uid)
                )
                for username, gid in session.execute(personal).yield_per(2000):
                    yield PosixGroup(username, gid, None), [username]

    def check(self) -> list[IntegrityProblem]:
        """Every integrity problem in the database (empty when all is well).

        Duplicate uids, gids or names (possible only if rows were edited by hand), ids
        outside the ranges that were not pinned, invalid names, orphan memberships.
        """
        with read_session(self.engine, "checking integrity") as session:
            return find_problems(session, self.uid_range, self.gid_range)
