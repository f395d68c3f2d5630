"""AccountingStore on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from iris_jupyterhub.accounting import AccountingStore
from iris_jupyterhub.posix import IdentityKey, IdentityRegistry

from .conftest import at, session

HOSTILE = 'x|y\n%%\x00\ud800 "q"\\'


def test_open_get_round_trip_with_hostile_text(store: AccountingStore) -> None:
    record = session(1, profile=HOSTILE, identity_key=f"iss {HOSTILE}", choices={"k|": HOSTILE})
    store.open_session(record)
    got = store.get(record.record_id)
    assert got is not None
    assert got.job_id is not None
    assert got == type(record)(**{**record.__dict__, "job_id": got.job_id})
    assert store.get("missing") is None


def test_open_is_idempotent_and_fills_placement(store: AccountingStore) -> None:
    first = session(1, node=None, pod=None, namespace=None)
    store.open_session(first)
    store.open_session(first)
    placed = session(1, node="worker-9", pod="jupyter-x", namespace="ns", hub_user="other")
    store.open_session(placed)
    got = store.get(first.record_id)
    assert got is not None
    assert (got.node, got.pod, got.namespace) == ("worker-9", "jupyter-x", "ns")
    assert got.hub_user == first.hub_user  # nothing else is overwritten
    store.open_session(session(1, node="worker-2"))
    again = store.get(first.record_id)
    assert again is not None
    assert again.node == "worker-9"
    assert len(store.open_sessions()) == 1


def test_close_first_wins_and_clamps(store: AccountingStore) -> None:
    record = session(1)
    store.open_session(record)
    assert store.close_session(record.record_id, record.start - timedelta(seconds=5), "poll")
    assert not store.close_session(record.record_id, record.start + timedelta(hours=1), "stopped")
    got = store.get(record.record_id)
    assert got is not None
    assert got.end == record.start  # clamped: never a negative duration
    assert got.end_reason == "poll"
    assert not store.close_session("unknown", at(2026, 1, 1), "stopped")
    with pytest.raises(ValueError, match="end reason"):
        store.close_session(record.record_id, at(2026, 1, 1), "bogus")
    assert store.open_sessions() == []


def test_heartbeat_moves_forward_only_and_skips_closed(store: AccountingStore) -> None:
    running, closed = session(1), session(2)
    store.open_session(running)
    store.open_session(closed)
    store.close_session(closed.record_id, at(2026, 1, 10, 10), "stopped")
    store.heartbeat([running.record_id, closed.record_id, "unknown"], at(2026, 1, 10, 11))
    store.heartbeat([running.record_id], at(2026, 1, 10, 10, 30))  # older: ignored
    store.heartbeat([], at(2026, 1, 10, 12))
    got_running, got_closed = store.get(running.record_id), store.get(closed.record_id)
    assert got_running is not None
    assert got_closed is not None
    assert got_running.last_seen == at(2026, 1, 10, 11)
    assert got_closed.last_seen is None


def test_iter_sessions_overlap_order_and_batches(store: AccountingStore) -> None:
    # (n, start, end): ordered by start then record id
    spans = [
        (1, at(2026, 1, 1), at(2026, 1, 2)),  # ended before the range
        (2, at(2026, 1, 1), at(2026, 1, 5)),  # ends exactly at the range start: included
        (3, at(2026, 1, 3), None),  # open since before the range
        (4, at(2026, 1, 4), at(2026, 1, 6)),  # carried over
        (5, at(2026, 1, 5), at(2026, 1, 5)),  # zero length at the start
        (6, at(2026, 1, 7), at(2026, 1, 8)),
        (7, at(2026, 1, 7), None),
        (8, at(2026, 1, 10), at(2026, 1, 11)),  # starts at the range end: excluded
    ]
    for n, start, end in reversed(spans):
        store.open_session(session(n, start=start))
        if end is not None:
            store.close_session(f"{n:032x}", end, "stopped")
    for batch in (1, 2, 5000):
        found = [
            r.record_id for r in store.iter_sessions(at(2026, 1, 5), at(2026, 1, 10), batch=batch)
        ]
        assert found == [f"{n:032x}" for n in (2, 3, 4, 5, 6, 7)]
    assert list(store.iter_sessions(at(2026, 1, 5), at(2026, 1, 5))) == []
    assert [r.record_id for r in store.open_sessions()] == [f"{n:032x}" for n in (3, 7)]


def test_schema_has_its_own_version_table_and_indexes(store: AccountingStore, db_url: str) -> None:
    store.open_sessions()
    engine = create_engine(db_url)
    try:
        names = set(inspect(engine).get_table_names())
        assert {"accounting_sessions", "accounting_alembic_version"} <= names
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("accounting_sessions")}
        assert {
            "ix_accounting_sessions_record",
            "ix_accounting_sessions_start",
            "ix_accounting_sessions_end",
            "ix_accounting_sessions_open",
        } <= indexes
        with engine.connect() as connection:
            version = connection.execute(
                text("SELECT version_num FROM accounting_alembic_version")
            )
            assert version.scalar_one() == "a0001"
    finally:
        engine.dispose()


def test_shares_a_database_with_the_identity_registry(db_url: str) -> None:
    registry = IdentityRegistry(db_url=db_url)
    try:
        account = registry.map_identity(IdentityKey("https://iam", "s1"), "ada", ["iris"])
        store = AccountingStore(registry.engine)
        store.open_session(session(1, uid=account.uid, posix_user=account.username))
        assert registry.lookup_uid(account.uid) is not None
        got = store.get(f"{1:032x}")
        assert got is not None
        assert got.uid == account.uid
        store.close()  # not its engine: the registry keeps working
        assert registry.lookup_uid(account.uid) is not None
    finally:
        registry.close()


def test_concurrent_writers(db_url: str) -> None:
    """Two stores (two engines, like two hub processes) race on the same records."""
    stores = [AccountingStore.from_url(db_url, lock_timeout=30) for _ in range(2)]
    try:
        for s in stores:  # both migrate; the second finds the schema at head
            s.open_sessions()
        results: list[bool] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(8)

        def work(index: int) -> None:
            s = stores[index % 2]
            try:
                barrier.wait()
                for n in range(20):
                    s.open_session(session(n))
                    s.heartbeat([f"{n:032x}"], at(2026, 1, 10, 10, index))
                results.append(s.close_session(f"{0:032x}", at(2026, 1, 10, 12, index), "stopped"))
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(results) == [False] * 7 + [True]
        records = list(stores[0].iter_sessions(at(2026, 1, 1), at(2026, 2, 1)))
        assert len(records) == 20
        assert len({r.job_id for r in records}) == 20
        assert all(r.last_seen is not None for r in records[1:])
    finally:
        for s in stores:
            s.close()


def test_insert_many_streams_batches(sqlite_store: AccountingStore) -> None:
    records = (session(n, end=at(2026, 1, 10, 10), end_reason="stopped") for n in range(25))
    assert sqlite_store.insert_many(records, batch=7) == 25
    assert len(list(sqlite_store.iter_sessions(at(2026, 1, 1), at(2026, 2, 1), batch=4))) == 25
