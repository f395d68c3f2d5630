"""Faults: full ranges, databases down or locked, tampered rows, conflicting pins."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from devstack.idp import free_port
from devstack.postgres import PostgresServer, postgres_server
from iris_jupyterhub.posix import (
    IdentityConflictError,
    IdentityKey,
    IdentityRegistry,
    ImportRecord,
    RangeExhaustedError,
    RegistryUnavailableError,
)
from iris_jupyterhub.posix.models import Group, Identity, Membership

from .conftest import RegistryFactory

IAM = "https://iris-iam.stfc.ac.uk"


def key(n: int) -> IdentityKey:
    return IdentityKey(IAM, f"subject-{n}")


def row_counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = tuple(
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (Identity, Group, Membership)
        )
    engine.dispose()
    return counts  # type: ignore[return-value]


def test_range_exhausted_writes_nothing(make_registry: RegistryFactory) -> None:
    registry = make_registry(uid_range=(100_000, 100_002))
    uids = {registry.map_identity(key(n), f"user{n}", ["iris"]).uid for n in range(3)}
    assert uids == {100_000, 100_001, 100_002}
    before = row_counts(registry.url)
    with pytest.raises(RangeExhaustedError, match=r"IdentityRegistry\.uid_range") as info:
        registry.map_identity(key(3), "user3", ["iris", "new/group"])
    assert info.value.status == 503
    assert "try again later" in info.value.user_message
    assert row_counts(registry.url) == before
    # existing identities still log in
    assert registry.map_identity(key(0), "user0", ["iris"]).uid in uids


def test_gid_range_exhausted_by_groups(make_registry: RegistryFactory) -> None:
    registry = make_registry(gid_range=(200_000, 200_002))
    registry.map_identity(key(0), "a", ["g1"])
    registry.map_identity(key(1), "b", [])
    with pytest.raises(RangeExhaustedError, match=r"IdentityRegistry\.gid_range"):
        registry.map_identity(key(0), "a", ["g1", "g2"])
    assert registry.lookup(key(0)).groups[1].canonical == "g1"  # type: ignore[union-attr]


def test_closed_port_is_unavailable() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    registry = IdentityRegistry(db_url=url, connect_timeout=2)
    with pytest.raises(RegistryUnavailableError) as info:
        registry.map_identity(key(1), "a", [])
    assert info.value.status == 503
    assert "unavailable" in str(info.value)


def test_postgres_stopped_mid_test() -> None:
    with postgres_server("down") as server:
        registry = IdentityRegistry(db_url=server.url, connect_timeout=2, lock_timeout=2)
        first = registry.map_identity(key(1), "a", ["iris"])
        before = row_counts(server.url)
        server.stop()
        with pytest.raises(RegistryUnavailableError):
            registry.map_identity(key(2), "b", ["iris", "new"])
        with pytest.raises(RegistryUnavailableError):
            registry.lookup(key(1))
        server.start()
        server.wait_ready()
        assert row_counts(server.url) == before
        assert registry.map_identity(key(1), "a", ["iris"]) == first
        assert registry.map_identity(key(2), "b", []).uid != first.uid
        registry.close()


def test_sqlite_locked_by_another_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'locked.sqlite'}"
    registry = IdentityRegistry(db_url=url, lock_timeout=0.5)
    known = registry.map_identity(key(1), "a", ["iris"])
    blocker = sqlite3.connect(tmp_path / "locked.sqlite", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("UPDATE posix_groups SET name = name")
    try:
        started = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match="locked"):
            registry.map_identity(key(2), "b", [])
        assert 0.4 < time.monotonic() - started < 5
        # a known identity with unchanged groups only reads (WAL): still signs in
        assert registry.map_identity(key(1), "a", ["iris"]) == known
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert registry.map_identity(key(2), "b", []).username == "b"
    registry.close()


def test_postgres_lock_timeout(pg_url: str) -> None:
    registry = IdentityRegistry(db_url=pg_url, lock_timeout=0.5)
    registry.map_identity(key(1), "a", [])
    engine = create_engine(pg_url)
    with engine.connect() as blocker, blocker.begin():
        blocker.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x1215_0051})
        with pytest.raises(RegistryUnavailableError):
            registry.map_identity(key(2), "b", [])
    engine.dispose()
    assert registry.map_identity(key(2), "b", []).username == "b"
    registry.close()


def test_tampered_duplicate_uid_is_refused(registry: IdentityRegistry) -> None:
    a = registry.map_identity(key(1), "alice", ["iris"])
    b = registry.map_identity(key(2), "bob", ["iris"])
    engine = create_engine(registry.url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_posix_identities_uid"))
        connection.execute(
            text("UPDATE posix_identities SET uid = :uid WHERE username = 'bob'"), {"uid": a.uid}
        )
    engine.dispose()
    problems = registry.check()
    assert [p.kind for p in problems] == ["duplicate-uid"]
    assert set(problems[0].keys) == {a.key, b.key}
    for k, name in ((key(1), "alice"), (key(2), "bob")):
        with pytest.raises(IdentityConflictError, match=f"uid {a.uid}") as info:
            registry.map_identity(k, name, ["iris"])
        assert info.value.status == 403


def test_tampered_group_gid_clash(registry: IdentityRegistry) -> None:
    a = registry.map_identity(key(1), "alice", ["iris"])
    engine = create_engine(registry.url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE posix_groups SET gid = :gid WHERE canonical = 'iris'"), {"gid": a.gid}
        )
    engine.dispose()
    assert {p.kind for p in registry.check()} == {"duplicate-gid"}
    with pytest.raises(IdentityConflictError):
        registry.map_identity(key(1), "alice", ["iris"])


def test_pins_report_conflicts_and_never_overwrite(registry: IdentityRegistry) -> None:
    site = IdentityKey(IAM, "site-person")
    pinned = registry.pin(site, 5001, "jdoe", gid=5001)
    assert pinned.status == "added"
    assert pinned.account is not None
    assert (pinned.account.uid, pinned.account.gid, pinned.account.username) == (
        5001,
        5001,
        "jdoe",
    )
    assert pinned.account.pinned
    assert registry.pin(site, 5001, "jdoe").status == "unchanged"
    again = registry.pin(site, 5002)
    assert again.status == "conflict"
    assert registry.lookup(site).uid == 5001  # type: ignore[union-attr]
    other = registry.pin(IdentityKey(IAM, "other"), 5001, "jdoe", gid=5001)
    assert other.status == "conflict"
    assert len(other.conflicts) == 3
    assert registry.pin(IdentityKey(IAM, "x"), 0).status == "conflict"
    assert registry.pin(IdentityKey(IAM, "x"), 6000, "root").status == "conflict"
    assert registry.pin(IdentityKey(IAM, "x"), 6000, "Bad Name").status == "conflict"
    assert registry.lookup(IdentityKey(IAM, "x")) is None
    # the pinned identity keeps its ids when it logs in; outside the range is fine
    login = registry.map_identity(site, "john", ["iris"])
    assert (login.uid, login.gid, login.username) == (5001, 5001, "jdoe")
    assert registry.check() == []
    # a hashed identity cannot be re-pinned
    hashed = registry.map_identity(key(9), "h", [])
    assert registry.pin(key(9), 7000).status == "conflict"
    assert registry.lookup(key(9)) == hashed


def test_import_report(registry: IdentityRegistry) -> None:
    registry.pin(IdentityKey(IAM, "existing"), 8000, "existing")
    report = registry.import_accounts(
        [
            ImportRecord(IdentityKey(IAM, "new1"), 8001, "new1", 8001, ["iris"]),
            ImportRecord(IdentityKey(IAM, "existing"), 8000, "existing"),
            ImportRecord(IdentityKey(IAM, "clash"), 8001, "clash"),
            ImportRecord(IdentityKey(IAM, "new2"), 8002, None),
        ]
    )
    assert len(report.added) == 2
    assert len(report.unchanged) == 1
    assert len(report.conflicts) == 1
    assert "8001" in report.conflicts[0]
    assert str(report) == "2 added, 1 unchanged, 1 conflicts"
    new1 = registry.lookup(IdentityKey(IAM, "new1"))
    assert new1 is not None
    assert [g.canonical for g in new1.groups] == [None, "iris"]
    assert registry.lookup(IdentityKey(IAM, "clash")) is None


def test_server_fixture_cleans_up(pg_server: PostgresServer) -> None:
    assert pg_server.root.exists()
