"""Session accounting through the whole stack: real hub (IRISSpawner), IdP, Kubernetes stand-in.

Every scenario reads the records from the hub's own database (the identity registry's
SQLite file) and, at the end, through ``iris-jupyterhub accounting export``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.configs import IRIS_SPAWNER_CONFIG as IRIS_CONFIG
from devstack.configs import KUBE_NAMESPACE
from devstack.hub import REPO_ROOT
from devstack.kubelet import NODE_NAME
from devstack.stacks import KubeStack
from iris_jupyterhub.accounting import AccountingStore, SessionRecord
from iris_jupyterhub.accounting.reconcile import parse_kube_time

pytestmark = pytest.mark.e2e

HEARTBEAT = 2.0  # the stale bound 3 x max(2, 1) = 6 s leaves room for a loaded machine
POLL = 1  # Spawner.poll_interval is an Integer: traitlets < 5.15 (z2jh 4.2.0) refuses 1.0
STALE_AFTER = 3 * max(HEARTBEAT, POLL)  # SessionAccounting.stale_after

ACCOUNTING_CONFIG = f"""
c.IRISSpawner.poll_interval = {POLL}
c.JupyterHub.last_activity_interval = 2
c.JupyterHub.authenticate_prometheus = False
c.SessionAccounting.heartbeat_interval = {HEARTBEAT}
c.SessionAccounting.reconcile_interval = 0
c.SessionAccounting.site_name = "IRIS-TEST"
"""

USER = "aresearcher"  # IdP login "ada": member of iris/lsst


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def ks(kube_stack_factory: Callable[..., KubeStack]) -> KubeStack:
    stack = kube_stack_factory(IRIS_CONFIG + ACCOUNTING_CONFIG)
    assert stack.login("ada").status == 302
    return stack


@pytest.fixture(scope="module")
def db_url(ks: KubeStack) -> str:
    return f"sqlite:///{ks.hub.workdir / 'iris-identities.sqlite'}"


@pytest.fixture(scope="module")
def store(db_url: str) -> Iterator[AccountingStore]:
    store = AccountingStore.from_url(db_url)
    yield store
    store.close()


def records_of(store: AccountingStore, user: str = USER) -> list[SessionRecord]:
    start = utcnow() - timedelta(days=1)
    return [
        r for r in store.iter_sessions(start, utcnow() + timedelta(days=1)) if r.hub_user == user
    ]


def wait_for(predicate: Callable[[], Any], what: str, ks: KubeStack, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{ks.hub.log_tail(40)}")
        time.sleep(0.1)


def start(ks: KubeStack, options: dict[str, Any]) -> dict[str, Any]:
    r = ks.start_server(USER, options)
    assert r.status_code in (201, 202), r.text
    ks.wait_ready(USER)
    pods = ks.pods_of(USER)
    assert len(pods) == 1
    return pods[0]


def open_record(store: AccountingStore, ks: KubeStack, pod: dict[str, Any]) -> SessionRecord:
    name = pod["metadata"]["name"]
    return wait_for(
        lambda: next((r for r in store.open_sessions() if r.pod == name), None),
        f"an open record for {name}",
        ks,
    )


def heartbeat_after(
    store: AccountingStore, ks: KubeStack, record_id: str, after: datetime
) -> datetime:
    def seen() -> datetime | None:
        record = store.get(record_id)
        assert record is not None
        return record.last_seen if record.last_seen and record.last_seen > after else None

    return wait_for(seen, f"a heartbeat of {record_id} after {after}", ks)


def closed(store: AccountingStore, ks: KubeStack, record_id: str) -> SessionRecord:
    def get() -> SessionRecord | None:
        record = store.get(record_id)
        return record if record is not None and record.end is not None else None

    return wait_for(get, f"{record_id} closed", ks)


def delete_pod(ks: KubeStack, name: str) -> None:
    r = ks.kube.api("DELETE", f"/api/v1/namespaces/{KUBE_NAMESPACE}/pods/{name}")
    assert r.status_code in (200, 202), r.text
    ks.kube.wait_pod_gone(KUBE_NAMESPACE, name)


def posix(ks: KubeStack) -> dict[str, Any]:
    return dict(ks.hub.api("GET", f"/users/{USER}").json()["auth_state"]["posix"])


def metrics(ks: KubeStack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{ks.hub.url}/hub/metrics", timeout=10)
    assert r.status_code == 200, r.text[:300]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
        if sample.name.startswith("iris_")
    }


GPU_LABELS = (("group", "iris/lsst"), ("profile", "lsst-gpu"))


def test_start_and_stop_make_one_closed_record(ks: KubeStack, store: AccountingStore) -> None:
    before = {r.record_id for r in records_of(store)}
    asked = utcnow()
    pod = start(ks, {"profile": "lsst-gpu", "group": "iris-lsst"})
    record = open_record(store, ks, pod)
    assert (
        ks.hub.api("GET", f"/users/{USER}").json()["servers"][""]["state"]["iris"]["record_id"]
        == record.record_id
    )
    ks.stop_server(USER)
    stopped = utcnow()
    record = closed(store, ks, record.record_id)
    new = [r for r in records_of(store) if r.record_id not in before]
    assert [r.record_id for r in new] == [record.record_id]

    account = posix(ks)
    group = next(g for g in account["groups"] if g["name"] == "iris-lsst")
    assert record.uid == account["uid"] == pod["spec"]["securityContext"]["runAsUser"]
    assert record.gid == group["gid"] == pod["spec"]["securityContext"]["runAsGroup"]
    assert record.group == "iris-lsst"
    assert record.canonical_group == "iris/lsst"
    assert record.posix_user == account["username"]
    identity = ks.hub.api("GET", f"/users/{USER}").json()["auth_state"]["identity"]
    assert record.identity_key == f"{identity['issuer']} {identity['subject']}"
    assert record.profile == "lsst-gpu"
    assert record.gpus == 1
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    assert record.cpu_limit == float(limits["cpu"])
    assert record.memory_limit == 4 * 1024**3  # "4G" in the profile, as KubeSpawner reads it
    assert str(limits["memory"]) in (str(record.memory_limit), "4G")
    assert record.memory_request is None or str(requests["memory"]) in (
        str(record.memory_request),
        "4G",
    )
    assert record.image == pod["spec"]["containers"][0]["image"]
    assert record.node == pod["spec"]["nodeName"] == NODE_NAME  # what Kubernetes reported
    assert record.namespace == KUBE_NAMESPACE
    assert record.pod == pod["metadata"]["name"]
    assert record.end_reason == "stopped"
    assert record.end is not None
    # the pod's startTime (whole seconds, same clock here) is used
    assert record.start == parse_kube_time(pod["status"]["startTime"])
    assert asked.replace(microsecond=0) <= record.start <= record.end <= stopped


def test_pod_deleted_behind_the_hubs_back_is_closed_by_poll(
    ks: KubeStack, store: AccountingStore
) -> None:
    pod = start(ks, {"profile": "standard"})
    record = open_record(store, ks, pod)
    heartbeat_after(store, ks, record.record_id, record.start)
    deleted = utcnow()
    delete_pod(ks, pod["metadata"]["name"])
    wait_for(lambda: ks.server_model(USER) is None, "the hub to notice", ks)
    noticed = utcnow()
    record = closed(store, ks, record.record_id)
    assert record.end_reason == "poll"
    assert record.end is not None
    assert deleted <= record.end <= noticed
    assert record.profile == "standard"
    assert record.canonical_group == "iris"  # run as the personal group: charged to the VO
    assert record.group == posix(ks)["username"]


def test_pod_vanishing_while_the_hub_is_down_ends_at_the_last_heartbeat(
    ks: KubeStack, store: AccountingStore
) -> None:
    pod = start(ks, {"profile": "standard"})
    record = open_record(store, ks, pod)
    heartbeat_after(store, ks, record.record_id, record.start)
    ks.hub.kill()
    record = store.get(record.record_id) or record
    last_seen = record.last_seen
    assert last_seen is not None
    deleted = utcnow()
    delete_pod(ks, pod["metadata"]["name"])
    # the hub stays down longer than a heartbeat can vouch for
    time.sleep(max(0.0, STALE_AFTER + 1 - (utcnow() - last_seen).total_seconds()))
    restarted = utcnow()
    ks.hub.start()
    record = closed(store, ks, record.record_id)
    assert record.end == last_seen
    assert record.end <= deleted < restarted
    assert record.end_reason == "poll"
    wait_for(lambda: ks.server_model(USER) is None, "the server to be gone", ks)


def test_hub_restart_keeps_a_running_session_open_then_stop_closes_it_once(
    ks: KubeStack, store: AccountingStore
) -> None:
    pod = start(ks, {"profile": "standard"})
    record = open_record(store, ks, pod)
    ks.hub.kill()
    # a record no spawner state points to (e.g. a hub database restored from a backup),
    # for a pod that no longer exists: the reconciler's start-up run closes it
    orphan_seen = utcnow() - timedelta(minutes=10)
    orphan = replace(
        record,
        record_id=uuid.uuid4().hex,
        pod="jupyter-gone-long-ago",
        start=orphan_seen - timedelta(hours=1),
        last_seen=orphan_seen,
        job_id=None,
    )
    store.open_session(orphan)
    restarted = utcnow()
    ks.hub.start()
    ks.wait_ready(USER)
    gone = closed(store, ks, orphan.record_id)
    assert (gone.end, gone.end_reason) == (orphan_seen, "vanished")
    heartbeat_after(store, ks, record.record_id, restarted)  # the restarted hub polls it
    still = store.get(record.record_id)
    assert still is not None
    assert still.end is None
    assert [r.record_id for r in store.open_sessions() if r.hub_user == USER] == [record.record_id]
    ks.stop_server(USER)
    record = closed(store, ks, record.record_id)
    assert record.end_reason == "stopped"
    assert record.end is not None
    assert record.end >= restarted
    assert not [r for r in store.open_sessions() if r.hub_user == USER]


def test_metrics_follow_sessions(ks: KubeStack, store: AccountingStore) -> None:
    active = ("iris_sessions_active", GPU_LABELS)
    cpu = ("iris_cpu_hours_total", (("group", "iris/lsst"),))
    gpu = ("iris_gpu_hours_total", (("group", "iris/lsst"),))
    mem = ("iris_memory_gib_hours_total", (("group", "iris/lsst"),))
    spawns = ("iris_spawn_duration_seconds_count", GPU_LABELS)
    before = metrics(ks)
    pod = start(ks, {"profile": "lsst-gpu", "group": "iris-lsst"})
    record = open_record(store, ks, pod)
    running = metrics(ks)
    assert running[active] == before.get(active, 0) + 1
    assert running[spawns] == before.get(spawns, 0) + 1
    heartbeat_after(store, ks, record.record_id, record.start + timedelta(seconds=HEARTBEAT))
    later = wait_for(
        lambda: (m := metrics(ks)).get(cpu, 0) > running.get(cpu, 0) and m, "cpu hours", ks
    )
    assert later[gpu] > running.get(gpu, 0)
    assert later[mem] > running.get(mem, 0)
    ks.stop_server(USER)
    record = closed(store, ks, record.record_id)
    after = metrics(ks)
    assert after[active] == before.get(active, 0)
    assert after[cpu] >= later[cpu]
    # the counters cover the session: cpus x hours since it started (this process)
    assert record.end is not None
    hours = (record.end - record.start).total_seconds() / 3600
    assert after[cpu] - before.get(cpu, 0) == pytest.approx(2 * hours, rel=0.05, abs=1e-5)
    assert after[gpu] - before.get(gpu, 0) == pytest.approx(1 * hours, rel=0.05, abs=1e-5)


@pytest.mark.parametrize(
    ("profile", "charged"),
    [
        ("standard", "iris"),  # open to all: the group that admitted ada to the hub
        ("lsst-gpu", "iris/lsst"),  # the profile's allowed_groups
    ],
)
def test_personal_group_session_is_charged_to_a_vo_group(
    ks: KubeStack, store: AccountingStore, profile: str, charged: str
) -> None:
    personal = posix(ks)["username"]
    labels = (("group", charged), ("profile", profile))
    active = ("iris_sessions_active", labels)
    before = metrics(ks)
    pod = start(ks, {"profile": profile, "group": personal})
    try:
        record = open_record(store, ks, pod)
        assert record.group == personal
        assert record.canonical_group == charged
        state = ks.hub.api("GET", f"/users/{USER}").json()["servers"][""]["state"]["iris"]
        assert state["charge_group"] == charged
        assert state["group"] is None  # quotas still see the group run as
        assert metrics(ks)[active] == before.get(active, 0) + 1
    finally:
        ks.stop_server(USER)
    assert closed(store, ks, record.record_id).canonical_group == charged
    assert metrics(ks)[active] == before.get(active, 0)


def export(db_url: str, fmt: str, out: Path | str = "-") -> str:
    r = subprocess.run(
        [
            sys.executable, "-m", "iris_jupyterhub.cli", "accounting", "export",
            "--db-url", db_url, "--format", fmt, "--site-name", "IRIS-TEST",
            "--from", (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d"),
            "--to", (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d"),
            "--out", str(out),
        ],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_every_session_is_exported_exactly_once(
    ks: KubeStack, store: AccountingStore, db_url: str
) -> None:
    # runs last in the module: every scenario above (across restarts) left closed records
    sessions = records_of(store)
    assert len(sessions) >= 5
    assert all(r.end is not None for r in sessions)
    ids = sorted(r.record_id for r in sessions)

    lines = [json.loads(line) for line in export(db_url, "json").splitlines() if line.strip()]
    exported = sorted(line["record_id"] for line in lines if line["hub_user"] == USER)
    assert exported == ids

    xdmod = [line for line in export(db_url, "xdmod").splitlines() if line.strip()]
    jobs = {r.job_id for r in sessions}
    xdmod_jobs = [int(line.split("|")[0]) for line in xdmod if int(line.split("|")[0]) in jobs]
    assert sorted(xdmod_jobs) == sorted(jobs)

    apel = export(db_url, "apel")
    vmuuids = [
        line.split(":", 1)[1].strip() for line in apel.splitlines() if line.startswith("VMUUID:")
    ]
    for record_id in ids:
        assert sum(1 for v in vmuuids if record_id in v) == 1
