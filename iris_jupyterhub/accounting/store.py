"""Session records in the registry's database: open, heartbeat, close, stream.

The table lives in the same database as the identity registry (a SQLite file by default,
PostgreSQL in production) and uses the shared engine set-up and transactions
(:mod:`iris_jupyterhub.db`): every write is one short transaction holding the
database's write lock (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on
PostgreSQL), reads take no lock. Accounting writes are a few per session, so sharing the
lock with the (rare) identity assignments costs nothing measurable.

Rules
-----
* ``open_session`` is idempotent on ``record_id``: the same id again changes nothing,
  except that ``node``/``namespace``/``pod`` are filled in if they were unknown.
* ``close_session``: the first close wins (later ones return False and change nothing);
  an end before the start is clamped to the start.
* ``heartbeat`` only moves ``last_seen`` forward, and only for open sessions.
* Nothing is ever deleted. Exports are computed from the table and mark nothing, so they
  can be repeated.
* :meth:`AccountingStore.iter_sessions` streams with keyset pagination on
  ``(start_time, record_id)``: each batch is its own short read transaction, memory stays
  bounded by ``batch`` rows whatever the table size.

Database failures raise :class:`~iris_jupyterhub.db.DatabaseError`
(:class:`~iris_jupyterhub.db.DatabaseUnavailableError` when the database cannot be reached).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy import Engine, Table, and_, insert, or_, select, tuple_, update
from sqlalchemy.sql.elements import ColumnElement

from ..db import WRITE_LOCK_KEY, make_engine, read_connection, upgrade_schema, write_session
from .models import SessionRow
from .records import END_REASONS, SessionRecord, utc

__all__ = ["AccountingStore", "upgrade_accounting"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_TABLE = cast(Table, SessionRow.__table__)
_C = _TABLE.c
_ID_CHUNK = 500


def upgrade_accounting(engine: Engine) -> None:
    """Apply the accounting migrations up to ``head`` under the database's write lock."""
    upgrade_schema(
        engine, MIGRATIONS_DIR, lock_key=WRITE_LOCK_KEY, action="upgrading the accounting schema"
    )


_UNSTORABLE_RE = re.compile(r"[\x00\ud800-\udfff]")


def _name(value: str | None) -> str | None:
    """A name column value PostgreSQL and SQLite can store (NUL, lone surrogates -> U+FFFD)."""
    return None if value is None else _UNSTORABLE_RE.sub("\ufffd", value)


def _choices_json(choices: Any) -> str:
    return json.dumps(dict(choices), sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def _values(record: SessionRecord) -> dict[str, Any]:
    return {
        "record_id": record.record_id,
        "identity_key": record.identity_key,
        "hub_user": record.hub_user,
        "server_name": _name(record.server_name),
        "posix_user": _name(record.posix_user),
        "uid": record.uid,
        "gid": record.gid,
        "posix_group": _name(record.group),
        "canonical_group": record.canonical_group,
        "profile": record.profile,
        "choices": _choices_json(record.choices),
        "image": record.image,
        "cpu_request": record.cpu_request,
        "cpu_limit": record.cpu_limit,
        "memory_request": record.memory_request,
        "memory_limit": record.memory_limit,
        "gpus": record.gpus,
        "node": _name(record.node),
        "namespace": _name(record.namespace),
        "pod": _name(record.pod),
        "start_time": record.start,
        "end_time": None if record.end is None else max(record.end, record.start),
        "end_reason": record.end_reason,
        "last_seen": record.last_seen,
    }


_COLUMNS = (
    "id", "record_id", "identity_key", "hub_user", "server_name", "posix_user", "uid", "gid",
    "posix_group", "canonical_group", "profile", "choices", "image", "cpu_request", "cpu_limit",
    "memory_request", "memory_limit", "gpus", "node", "namespace", "pod", "start_time",
    "end_time", "end_reason", "last_seen",
)  # fmt: skip
_SELECT = select(*(_C[name] for name in _COLUMNS))


@lru_cache(maxsize=4096)
def _choices(text: str) -> Mapping[str, str]:
    """Parsed profile choices, shared read-only between records (few distinct values)."""
    return MappingProxyType(json.loads(text))


def _record(row: Sequence[Any]) -> SessionRecord:
    """A record from a row of :data:`_SELECT` (positional: the export's hot path)."""
    (
        job_id, record_id, identity_key, hub_user, server_name, posix_user, uid, gid,
        posix_group, canonical_group, profile, choices, image, cpu_request, cpu_limit,
        memory_request, memory_limit, gpus, node, namespace, pod, start, end, end_reason,
        last_seen,
    ) = row  # fmt: skip
    return SessionRecord(
        record_id=record_id,
        identity_key=identity_key,
        hub_user=hub_user,
        server_name=server_name,
        posix_user=posix_user,
        uid=uid,
        gid=gid,
        group=posix_group,
        canonical_group=canonical_group,
        profile=profile,
        choices=_choices(choices),
        image=image,
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        memory_request=memory_request,
        memory_limit=memory_limit,
        gpus=gpus,
        node=node,
        namespace=namespace,
        pod=pod,
        start=start,
        end=end,
        end_reason=end_reason,
        last_seen=last_seen,
        job_id=job_id,
    )


class AccountingStore:
    """Session records in the database behind ``engine`` (migrated at first use).

    Thread-safe; every method is one transaction. Build it from a URL with
    :meth:`from_url` (then :meth:`close` disposes of the engine) or give it the engine of
    an :class:`~iris_jupyterhub.posix.IdentityRegistry` to share its connections.
    """

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine
        self._migrated = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, *, connect_timeout: float = 10.0, lock_timeout: float = 10.0
    ) -> AccountingStore:
        """A store on its own engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://``)."""
        engine = make_engine(url, connect_timeout=connect_timeout, lock_timeout=lock_timeout)
        return cls(engine, owns_engine=True)

    def _ready(self) -> Engine:
        with self._lock:
            if not self._migrated:
                upgrade_accounting(self.engine)
                self._migrated = True
        return self.engine

    def close(self) -> None:
        """Dispose of the engine if this store created it."""
        if self._owns_engine:
            self.engine.dispose()

    # -- writes ------------------------------------------------------------------

    def open_session(self, record: SessionRecord) -> None:
        """Record a started session; the same ``record_id`` again only fills unknown placement."""
        engine = self._ready()
        with write_session(engine, "opening an accounting record") as session:
            found = session.execute(
                select(_C.id, _C.node, _C.namespace, _C.pod).where(
                    _C.record_id == record.record_id
                )
            ).first()
            if found is None:
                session.execute(insert(_TABLE).values(**_values(record)))
                return
            fill = {
                name: _name(getattr(record, name))
                for name in ("node", "namespace", "pod")
                if getattr(found, name) is None and getattr(record, name) is not None
            }
            if fill:
                session.execute(update(_TABLE).where(_C.id == found.id).values(**fill))

    def insert_many(self, records: Iterable[SessionRecord], *, batch: int = 10_000) -> int:
        """Bulk-insert new records (imports, benchmarks) in batches; an existing id is an error."""
        engine = self._ready()
        count = 0
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            with write_session(engine, "inserting accounting records") as session:
                session.execute(insert(_TABLE), chunk)
            chunk.clear()

        for record in records:
            chunk.append(_values(record))
            count += 1
            if len(chunk) >= batch:
                flush()
        if chunk:
            flush()
        return count

    def heartbeat(self, record_ids: Iterable[str], at: datetime) -> None:
        """Set ``last_seen`` to ``at`` for these open sessions (never moves it back)."""
        at = utc(at)
        ids = sorted(set(record_ids))
        if not ids:
            return
        engine = self._ready()
        with write_session(engine, "recording accounting heartbeats") as session:
            for start in range(0, len(ids), _ID_CHUNK):
                session.execute(
                    update(_TABLE)
                    .where(
                        _C.record_id.in_(ids[start : start + _ID_CHUNK]),
                        _C.end_time.is_(None),
                        or_(_C.last_seen.is_(None), _C.last_seen < at),
                    )
                    .values(last_seen=at)
                )

    def close_session(self, record_id: str, end: datetime, reason: str) -> bool:
        """Close a session; False if it is unknown or already closed (the first close wins)."""
        if reason not in END_REASONS:
            raise ValueError(f"end reason must be one of {', '.join(END_REASONS)}: {reason!r}")
        end = utc(end)
        engine = self._ready()
        with write_session(engine, "closing an accounting record") as session:
            found = session.execute(
                select(_C.id, _C.start_time, _C.end_time).where(_C.record_id == record_id)
            ).first()
            if found is None or found.end_time is not None:
                return False
            session.execute(
                update(_TABLE)
                .where(_C.id == found.id)
                .values(end_time=max(end, found.start_time), end_reason=reason)
            )
            return True

    # -- reads -------------------------------------------------------------------

    def get(self, record_id: str) -> SessionRecord | None:
        """The session ``record_id``, or None."""
        engine = self._ready()
        with read_connection(engine, "reading an accounting record") as connection:
            row = connection.execute(_SELECT.where(_C.record_id == record_id)).first()
        return None if row is None else _record(row)

    def open_sessions(self) -> list[SessionRecord]:
        """Every session not closed yet, oldest first."""
        engine = self._ready()
        with read_connection(engine, "listing open accounting records") as connection:
            rows = connection.execute(
                _SELECT.where(_C.end_time.is_(None)).order_by(_C.start_time, _C.record_id)
            ).all()
        return [_record(row) for row in rows]

    def iter_sessions(
        self, start: datetime, end: datetime, *, batch: int = 5000
    ) -> Iterator[SessionRecord]:
        """Sessions that overlap ``[start, end)``, open ones included, by (start, record_id).

        A session overlaps if it started before ``end`` and is still open or ended at or
        after ``start`` (a session ending exactly at ``start`` is included, so that formats
        reporting a session where it ends see it). Streamed in batches of ``batch`` rows.
        Sessions that started before ``start`` come first (found through the ``end_time``
        index and the open sessions), then those that started in the range (through the
        ``start_time`` index), so a recent range never scans the whole history twice.
        """
        start, end = utc(start), utc(end)
        if end <= start:
            return
        carried = and_(_C.start_time < start, or_(_C.end_time.is_(None), _C.end_time >= start))
        inside = and_(_C.start_time >= start, _C.start_time < end)
        for condition in (carried, inside):
            yield from self._scan(condition, batch)

    def _scan(self, condition: ColumnElement[bool], batch: int) -> Iterator[SessionRecord]:
        engine = self._ready()
        after: tuple[datetime, str] | None = None
        while True:
            query = _SELECT.where(condition)
            if after is not None:
                query = query.where(tuple_(_C.start_time, _C.record_id) > after)
            query = query.order_by(_C.start_time, _C.record_id).limit(batch)
            with read_connection(engine, "reading accounting records") as connection:
                rows = connection.execute(query).all()
            for row in rows:
                yield _record(row)
            if len(rows) < batch:
                return
            last = rows[-1]
            after = (last.start_time, last.record_id)
