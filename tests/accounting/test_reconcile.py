"""The reconciler's decisions as plain data, and one run against a real store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest

from iris_jupyterhub.accounting import AccountingStore
from iris_jupyterhub.accounting.reconcile import (
    Action,
    finished_at,
    parse_kube_time,
    reconcile,
    reconcile_once,
)
from iris_jupyterhub.accounting.writer import AccountingWriter

from .conftest import at, session

START = at(2026, 3, 2, 9, 0, 0)
SEEN = at(2026, 3, 2, 10, 0, 0)
NOW = at(2026, 3, 2, 12, 0, 0)


def pod(
    name: str,
    phase: str = "Running",
    *,
    namespace: str = "jhub",
    created: str = "2026-03-02T08:59:50Z",
    finished: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "2026-03-02T09:00:00Z"}}
    if finished is not None:
        state = {"terminated": {"exitCode": 0, "finishedAt": finished}}
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-03-02T11:59:00Z"
    return {
        "metadata": meta,
        "status": {"phase": phase, "containerStatuses": [{"name": "notebook", "state": state}]},
    }


def open_session(n: int, **overrides: Any) -> Any:
    values = {"start": START, "last_seen": SEEN, "pod": f"jupyter-user{n}"}
    values.update(overrides)
    return session(n, **values)


@pytest.mark.parametrize(
    ("record", "pods", "expected"),
    [
        # running pod: keep open, heartbeat now
        (open_session(1), [pod("jupyter-user1")], Action("heartbeat", f"{1:032x}", NOW)),
        (
            open_session(1),
            [pod("jupyter-user1", "Pending")],
            Action("heartbeat", f"{1:032x}", NOW),
        ),
        # pod gone: end at the last heartbeat
        (open_session(1), [], Action("close", f"{1:032x}", SEEN, "vanished")),
        # pod gone, never a heartbeat: end at the start
        (open_session(1, last_seen=None), [], Action("close", f"{1:032x}", START, "vanished")),
        # same name, other namespace: gone
        (
            open_session(1),
            [pod("jupyter-user1", namespace="other")],
            Action("close", f"{1:032x}", SEEN, "vanished"),
        ),
        # a newer pod with the same name (the session's own pod is gone)
        (
            open_session(1),
            [pod("jupyter-user1", created="2026-03-02T11:00:00Z")],
            Action("close", f"{1:032x}", SEEN, "vanished"),
        ),
        # finished pod: its finishedAt
        (
            open_session(1),
            [pod("jupyter-user1", "Succeeded", finished="2026-03-02T11:30:00Z")],
            Action("close", f"{1:032x}", at(2026, 3, 2, 11, 30), "poll"),
        ),
        # finishedAt before the last heartbeat (skewed clock): the heartbeat
        (
            open_session(1),
            [pod("jupyter-user1", "Failed", finished="2026-03-02T09:30:00Z")],
            Action("close", f"{1:032x}", SEEN, "poll"),
        ),
        # finishedAt in the future (skewed clock): now
        (
            open_session(1),
            [pod("jupyter-user1", "Failed", finished="2026-03-02T13:00:00Z")],
            Action("close", f"{1:032x}", NOW, "poll"),
        ),
        # finished without a time: the heartbeat
        (
            open_session(1),
            [pod("jupyter-user1", "Failed")],
            Action("close", f"{1:032x}", SEEN, "poll"),
        ),
        # being deleted: the hub's stop closes it
        (open_session(1), [pod("jupyter-user1", deleting=True)], Action("keep", f"{1:032x}")),
        # no pod recorded: left alone
        (open_session(1, pod=None), [], Action("keep", f"{1:032x}")),
    ],
)
def test_reconcile_decisions(record: Any, pods: list[dict[str, Any]], expected: Action) -> None:
    [action] = reconcile([record], pods, NOW, listed_namespaces=["jhub", "other"])
    assert (action.kind, action.record_id, action.end, action.reason) == (
        expected.kind,
        expected.record_id,
        expected.end,
        expected.reason,
    )


def test_records_in_unlisted_namespaces_are_left_alone() -> None:
    records = [open_session(1), open_session(2, namespace="elsewhere")]
    actions = reconcile(records, [], NOW, listed_namespaces=["jhub"])
    assert [(a.record_id, a.kind) for a in actions] == [
        (f"{1:032x}", "close"),
        (f"{2:032x}", "keep"),
    ]


def test_end_is_never_before_start() -> None:
    record = open_session(1, last_seen=at(2026, 3, 2, 8, 0, 0))  # heartbeat before start
    [action] = reconcile([record], [], NOW)
    assert action.end == START


def test_kube_times() -> None:
    assert parse_kube_time("2026-03-02T11:30:00Z") == at(2026, 3, 2, 11, 30)
    assert parse_kube_time("2026-03-02T11:30:00+01:00") == at(2026, 3, 2, 10, 30)
    assert parse_kube_time("yesterday") is None
    assert parse_kube_time(None) is None
    sidecar_then_notebook = {
        "status": {
            "containerStatuses": [
                {
                    "name": "sidecar",
                    "state": {"terminated": {"finishedAt": "2026-03-02T11:50:00Z"}},
                },
                {
                    "name": "notebook",
                    "state": {"terminated": {"finishedAt": "2026-03-02T11:40:00Z"}},
                },
            ]
        }
    }
    assert finished_at(sidecar_then_notebook) == at(2026, 3, 2, 11, 40)
    assert finished_at({"status": {}}) is None


async def test_one_run_against_a_store(sqlite_store: AccountingStore, sqlite_url: str) -> None:
    running, gone, elsewhere, tracked = (
        open_session(1),
        open_session(2),
        open_session(3, namespace="forbidden"),
        open_session(4),
    )
    for record in (running, gone, elsewhere, tracked):
        sqlite_store.open_session(record)
    sqlite_store.close_session(f"{9:032x}", NOW, "stopped")  # unknown id: nothing happens
    writer = AccountingWriter(sqlite_url)
    listed: list[str] = []

    async def list_pods(namespace: str) -> Sequence[Mapping[str, Any]]:
        listed.append(namespace)
        if namespace == "forbidden":
            raise PermissionError("pods is forbidden")
        return [pod("jupyter-user1")]

    closed: list[str] = []
    report = await reconcile_once(
        writer,
        list_pods,
        lambda: NOW,
        skip=lambda record_id: record_id == tracked.record_id,
        on_close=lambda record, _action: closed.append(record.record_id),
    )
    writer.close()
    assert sorted(listed) == ["forbidden", "jhub"]
    assert report.closed == (gone.record_id,) == tuple(closed)
    assert report.failed_namespaces == ("forbidden",)
    assert report.heartbeats == 1
    after = {r.record_id: r for r in sqlite_store.iter_sessions(START, NOW + timedelta(1))}
    assert after[gone.record_id].end == SEEN
    assert after[gone.record_id].end_reason == "vanished"
    assert after[running.record_id].end is None
    assert after[running.record_id].last_seen == NOW
    assert after[elsewhere.record_id].end is None  # could not look: left open
    assert after[tracked.record_id].end is None  # the spawner tracks it
    assert after[tracked.record_id].last_seen == SEEN
