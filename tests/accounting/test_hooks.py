"""Spawner-side accounting: the time rules, the record built from spawner data, queued writes
against a real store (including a database that fails and comes back), the options."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from iris_jupyterhub.accounting import AccountingStore
from iris_jupyterhub.accounting.config import SessionAccounting
from iris_jupyterhub.accounting.sessions import (
    choices_of,
    identity_key_of,
    session_end,
    session_record,
    session_start,
)
from iris_jupyterhub.accounting.writer import AccountingWriter
from iris_jupyterhub.db import registry_db_url

from .conftest import at, session

SKEW = timedelta(seconds=120)
STALE = timedelta(seconds=180)
START = at(2026, 3, 2, 9, 0, 0)
NOW = at(2026, 3, 2, 12, 0, 0)

AUTH_STATE = {
    "identity": {"issuer": "https://iris-iam.stfc.ac.uk/", "subject": "abc-123"},
    "posix": {
        "uid": 2_001_000_007,
        "gid": 2_001_000_007,
        "username": "ada",
        "groups": [
            {"name": "ada", "gid": 2_001_000_007, "canonical": None},
            {"name": "iris-lsst", "gid": 2_070_000_001, "canonical": "iris/lsst"},
        ],
    },
}


@pytest.mark.parametrize(
    ("pod_start", "expected"),
    [
        (None, NOW),  # no pod time: the hub's
        (NOW - timedelta(seconds=30), NOW - timedelta(seconds=30)),  # within tolerance
        (NOW - SKEW, NOW - SKEW),  # at the edge
        (NOW - SKEW - timedelta(seconds=1), NOW),  # too early: the kubelet's clock is off
        (NOW + timedelta(seconds=5), NOW),  # in the hub's future: the hub's
    ],
)
def test_session_start(pod_start: Any, expected: Any) -> None:
    assert session_start(NOW, pod_start, SKEW) == expected


@pytest.mark.parametrize(
    ("last_seen", "found_dead", "finished", "expected"),
    [
        # stopped by the hub: now, however old the heartbeat
        (START, False, None, NOW),
        # found dead with a fresh heartbeat: now
        (NOW - timedelta(seconds=60), True, None, NOW),
        # found dead, heartbeat older than the bound (hub was down): the heartbeat
        (NOW - STALE - timedelta(seconds=1), True, None, NOW - STALE - timedelta(seconds=1)),
        # found dead, never a heartbeat, long ago: the start
        (None, True, None, START),
        # Kubernetes says when it finished: that, within [heartbeat, now]
        (at(2026, 3, 2, 10), True, at(2026, 3, 2, 11), at(2026, 3, 2, 11)),
        (at(2026, 3, 2, 10), True, at(2026, 3, 2, 9, 30), at(2026, 3, 2, 10)),
        (at(2026, 3, 2, 10), True, at(2026, 3, 2, 13), NOW),
        # a heartbeat "before" the start (clock change) never puts the end before the start
        (START - timedelta(hours=1), True, None, START),
    ],
)
def test_session_end(last_seen: Any, found_dead: bool, finished: Any, expected: Any) -> None:
    end = session_end(
        NOW, START, last_seen, found_dead=found_dead, stale_after=STALE, finished=finished
    )
    assert end == expected
    assert end >= START


def test_end_is_never_before_start_even_with_the_clock_going_back() -> None:
    start = NOW + timedelta(seconds=30)  # the hub's clock went back after the start
    assert session_end(NOW, start, None, found_dead=False, stale_after=STALE) == start


def test_identity_and_choices() -> None:
    assert identity_key_of(AUTH_STATE, "ada") == "https://iris-iam.stfc.ac.uk/ abc-123"
    assert identity_key_of({}, "ada") == "local ada"
    assert identity_key_of(None, "ada") == "local ada"
    assert choices_of(
        {"profile": "gpu", "group": "iris-lsst", "image": "scipy", "n": 2, "x": {"a": 1}}
    ) == {"image": "scipy", "n": "2"}


def test_record_from_spawner_data() -> None:
    pod = {"spec": {"nodeName": "worker-7"}, "status": {"startTime": "2026-03-02T11:59:40Z"}}
    record = session_record(
        record_id="r1",
        hub_user="ada",
        server_name="gpu",
        auth_state=AUTH_STATE,
        user_options={"profile": "lsst-gpu", "group": "iris-lsst", "image": "cuda"},
        iris_state={"group": "iris/lsst", "cpu": 2, "memory": 4 * 2**30, "gpu": 1},
        uid=2_001_000_007,
        gid=2_070_000_001,
        image="quay.io/jupyter/pytorch-notebook:cuda12",
        cpu_guarantee=0.5,
        cpu_limit=2,
        mem_guarantee=2 * 2**30,
        mem_limit=4 * 2**30,
        namespace="jhub",
        pod_name="jupyter-ada--gpu",
        pod=pod,
        observed=NOW,
        tolerance=SKEW,
    )
    assert record.identity_key == "https://iris-iam.stfc.ac.uk/ abc-123"
    assert (record.uid, record.gid, record.group) == (2_001_000_007, 2_070_000_001, "iris-lsst")
    assert record.posix_user == "ada"
    assert record.canonical_group == "iris/lsst"
    assert (record.profile, dict(record.choices)) == ("lsst-gpu", {"image": "cuda"})
    assert (record.cpu_request, record.cpu_limit) == (0.5, 2.0)
    assert (record.memory_request, record.memory_limit) == (2 * 2**30, 4 * 2**30)
    assert record.gpus == 1
    assert (record.node, record.namespace, record.pod) == ("worker-7", "jhub", "jupyter-ada--gpu")
    assert record.start == at(2026, 3, 2, 11, 59, 40)
    assert record.last_seen == NOW
    assert record.end is None


def test_record_without_profiles_or_posix() -> None:
    record = session_record(
        record_id="r2",
        hub_user="bob",
        server_name="",
        auth_state=None,
        user_options={},
        iris_state=None,
        uid=None,
        gid=None,
        image="",
        cpu_guarantee=None,
        cpu_limit=None,
        mem_guarantee=None,
        mem_limit=None,
        namespace="jhub",
        pod_name="jupyter-bob",
        pod=None,
        observed=NOW,
        tolerance=SKEW,
    )
    assert record.identity_key == "local bob"
    assert (record.uid, record.gid, record.group, record.canonical_group) == (None,) * 4
    assert (record.profile, record.image, record.node, record.gpus) == (None, None, None, 0)
    assert record.start == NOW


# -- queued writes against a real store -----------------------------------------------


def test_writes_reach_the_store_in_order(sqlite_url: str) -> None:
    writer = AccountingWriter(sqlite_url)
    record = session(1, start=START)
    writer.queue_open(record)
    writer.queue_heartbeat([record.record_id], START + timedelta(minutes=5))
    writer.queue_close(record.record_id, START + timedelta(minutes=6), "stopped")
    writer.queue_close(record.record_id, START + timedelta(minutes=9), "poll")  # ignored
    assert writer.pending == 3
    assert writer.flush_sync()
    assert writer.pending == 0
    stored = writer.store().get(record.record_id)
    writer.close()
    assert stored is not None
    assert stored.last_seen == START + timedelta(minutes=5)
    assert (stored.end, stored.end_reason) == (START + timedelta(minutes=6), "stopped")


def test_a_failing_database_loses_nothing(tmp_path: Path, caplog: Any) -> None:
    folder = tmp_path / "db"
    folder.write_text("a file where the database's directory should be")
    url = f"sqlite:///{folder / 'accounting.sqlite'}"
    writer = AccountingWriter(url)
    first, second = session(1, start=START), session(2, start=START)
    writer.queue_open(first)
    assert not writer.flush_sync()
    writer.queue_open(second)
    writer.queue_close(first.record_id, START + timedelta(minutes=1), "stopped")
    assert not writer.flush_sync()
    assert writer.pending == 3
    assert "kept for retry" in caplog.text
    assert first.record_id in caplog.text
    folder.unlink()  # the database comes back
    folder.mkdir()
    assert writer.flush_sync()
    assert writer.pending == 0
    writer.close()
    store = AccountingStore.from_url(url)
    try:
        got = {r.record_id: r for r in store.iter_sessions(START, START + timedelta(days=1))}
    finally:
        store.close()
    assert set(got) == {first.record_id, second.record_id}
    assert got[first.record_id].end == START + timedelta(minutes=1)
    assert got[second.record_id].end is None


async def test_flush_runs_off_the_event_loop(sqlite_url: str) -> None:
    writer = AccountingWriter(sqlite_url)
    writer.queue_open(session(3, start=START))
    assert await writer.flush()
    assert await writer.read(lambda store: store.get(f"{3:032x}")) is not None
    writer.close()


# -- options -------------------------------------------------------------------------------


def test_db_url_defaults_to_the_registrys() -> None:
    hub = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    assert registry_db_url(None, hub_db=hub) == "sqlite:////srv/jupyterhub/iris-identities.sqlite"
    assert registry_db_url(None, hub_db="postgresql://x/hub") == "sqlite:///iris-identities.sqlite"
    config = Config()
    config.IdentityRegistry.db_url = "postgresql+psycopg://reg/ids"
    assert registry_db_url(config, hub_db=hub) == "postgresql+psycopg://reg/ids"
    assert registry_db_url(config, explicit="sqlite:////x.sqlite") == "sqlite:////x.sqlite"
    settings = SessionAccounting(config=config)
    assert settings.resolved_db_url(hub) == "postgresql+psycopg://reg/ids"
    # the hub's database from the configuration, as the spawner finds it
    hub_config = Config()
    hub_config.JupyterHub.db_url = hub
    assert SessionAccounting(config=hub_config).resolved_db_url() == (
        "sqlite:////srv/jupyterhub/iris-identities.sqlite"
    )
    hub_config.SessionAccounting.db_url = "sqlite:////x.sqlite"
    assert SessionAccounting(config=hub_config).resolved_db_url() == "sqlite:////x.sqlite"
    assert settings.enabled is True
    assert settings.stale_after(30) == 180


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("db_url", "mysql://x/y"),
        ("db_url", "not a url"),
        ("site_name", "has space"),
        ("xdmod_resource", "a|b"),
        ("apel_spool_dir", "relative/dir"),
        ("apel_records_per_message", 0),
        ("heartbeat_interval", 0),
        ("reconcile_interval", 0.5),
        ("clock_skew_tolerance", -1),
        ("export_interval", 10),
        ("export_days", 0),
        ("xdmod_out_dir", "relative"),
    ],
)
def test_bad_options_name_the_trait(trait: str, value: Any) -> None:
    config = Config()
    config.SessionAccounting[trait] = value
    with pytest.raises((TraitError, ValueError), match=f"SessionAccounting.{trait}"):
        SessionAccounting(config=config)
