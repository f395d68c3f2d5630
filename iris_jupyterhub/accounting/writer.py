"""Accounting writes from the hub that never fail a spawn or a stop, and are never lost.

:class:`AccountingWriter` queues every write (open, heartbeat, close) in memory and
applies the queue to the :class:`~iris_jupyterhub.accounting.store.AccountingStore` in a
worker thread (the hub's event loop never waits on the database). When the database
fails, the error is logged with the session it concerns and the writes stay queued; the
next write, poll or reconciler run tries again, in order (opens, then heartbeats, then
closes), so a record is never lost while the hub process lives. Replaying is safe:
opening is idempotent, heartbeats only move forward and the first close wins.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from .records import SessionRecord
from .store import AccountingStore

__all__ = ["AccountingWriter", "writer_for"]

T = TypeVar("T")


@dataclass
class _Queue:
    opens: dict[str, SessionRecord] = field(default_factory=dict)
    heartbeats: dict[str, datetime] = field(default_factory=dict)
    closes: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.opens) + len(self.heartbeats) + len(self.closes)


class AccountingWriter:
    """Queued writes to the accounting store at ``url`` (one per URL and process)."""

    def __init__(
        self,
        url: str,
        log: logging.Logger | None = None,
        store_factory: Callable[[str], AccountingStore] = AccountingStore.from_url,
    ) -> None:
        self.url = url
        self.log = log or logging.getLogger(__name__)
        self._store_factory = store_factory
        self._store: AccountingStore | None = None
        self._queue = _Queue()
        self._mutex = threading.Lock()  # the queue, across threads
        self._flushing = threading.Lock()  # one flush at a time

    @property
    def pending(self) -> int:
        """Writes waiting for the database."""
        return len(self._queue)

    def store(self) -> AccountingStore:
        """The store (created on first use)."""
        if self._store is None:
            self._store = self._store_factory(self.url)
        return self._store

    # -- queueing (any thread) ---------------------------------------------------------

    def queue_open(self, record: SessionRecord) -> None:
        with self._mutex:
            self._queue.opens[record.record_id] = record

    def queue_heartbeat(self, record_ids: list[str], at: datetime) -> None:
        with self._mutex:
            for record_id in record_ids:
                previous = self._queue.heartbeats.get(record_id)
                if previous is None or at > previous:
                    self._queue.heartbeats[record_id] = at

    def queue_close(self, record_id: str, end: datetime, reason: str) -> None:
        with self._mutex:
            self._queue.closes.setdefault(record_id, (end, reason))  # the first close wins

    # -- applying ---------------------------------------------------------------------

    def flush_sync(self) -> bool:
        """Apply the queue in order; True when it is empty afterwards. Never raises.

        The queue lock is only held to take and drop items, never during database I/O,
        so queueing from the event loop never waits for the database.
        """
        with self._flushing:
            try:
                store = self.store()
                with self._mutex:
                    opens = list(self._queue.opens.items())
                for record_id, record in opens:
                    store.open_session(record)
                    with self._mutex:
                        if self._queue.opens.get(record_id) is record:
                            del self._queue.opens[record_id]
                with self._mutex:
                    beats = dict(self._queue.heartbeats)
                by_time: dict[datetime, list[str]] = {}
                for record_id, at in beats.items():
                    by_time.setdefault(at, []).append(record_id)
                for at, ids in by_time.items():
                    store.heartbeat(ids, at)
                    with self._mutex:
                        for record_id in ids:
                            if self._queue.heartbeats.get(record_id) == at:
                                del self._queue.heartbeats[record_id]
                with self._mutex:
                    closes = list(self._queue.closes.items())
                for record_id, (end, reason) in closes:
                    store.close_session(record_id, end, reason)
                    with self._mutex:
                        self._queue.closes.pop(record_id, None)
            except Exception as error:
                with self._mutex:
                    waiting = len(self._queue)
                    ids = sorted({*self._queue.opens, *self._queue.closes})[:5]
                self.log.error(
                    "Accounting database %s failed (%s: %s); %d write(s) kept for retry "
                    "(sessions %s)",
                    _safe_url(self.url),
                    type(error).__name__,
                    str(error)[:200],
                    waiting,
                    ", ".join(ids) or "-",
                )
                return False
            return True

    async def flush(self) -> bool:
        """:meth:`flush_sync` in a worker thread."""
        if not self.pending:
            return True
        return await asyncio.get_running_loop().run_in_executor(None, self.flush_sync)

    async def read(self, fn: Callable[[AccountingStore], T]) -> T:
        """Run ``fn(store)`` in a worker thread (reads; raises what the store raises)."""

        def call() -> T:
            with self._flushing:
                store = self.store()
            return fn(store)

        return await asyncio.get_running_loop().run_in_executor(None, call)

    def close(self) -> None:
        with self._flushing:
            if self._store is not None:
                self._store.close()
                self._store = None


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url  # noqa: PLC0415

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "<accounting database>"


_WRITERS: dict[str, AccountingWriter] = {}
_WRITERS_LOCK = threading.Lock()


def writer_for(url: str, log: logging.Logger | None = None, **kwargs: Any) -> AccountingWriter:
    """The process's writer for ``url`` (created on first use)."""
    with _WRITERS_LOCK:
        if url not in _WRITERS:
            _WRITERS[url] = AccountingWriter(url, log, **kwargs)
        return _WRITERS[url]
