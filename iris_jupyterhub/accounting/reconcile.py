"""The reconciler: close the records of sessions whose pods are gone or finished.

The hub closes a record when it stops a server or finds it dead; the reconciler covers
what the hub cannot see: a pod that vanished while the hub was down, a record left open
by a hub replica that died, a close that failed. :func:`reconcile` is the decision, a
pure function of the open records, the pods Kubernetes lists and the time;
:func:`reconcile_once` runs it against a store and a pod lister.

Rules (for each open record with a known namespace and pod name, in a namespace that
was listed):

- pod missing, or a newer pod with the same name (created after the session started,
  beyond the clock-skew tolerance): close, reason ``vanished``, end = last heartbeat
  (the start when there was none). The session is not charged for time nobody saw.
- pod ``Succeeded`` or ``Failed``: close, reason ``poll`` (it ended by itself), end = the
  notebook container's ``finishedAt``, clamped between the last heartbeat (or start)
  and now; the last heartbeat when Kubernetes gives no time.
- pod being deleted (``deletionTimestamp``): keep; the hub's stop (or the next run)
  closes it.
- otherwise (Pending, Running): keep open, and record a heartbeat at ``now``.

Records without a namespace or pod name, and those in namespaces that could not be
listed, are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from .records import SessionRecord, utc

__all__ = ["Action", "ReconcileReport", "parse_kube_time", "reconcile", "reconcile_once"]

log = logging.getLogger(__name__)

NOTEBOOK_CONTAINER = "notebook"


@dataclass(frozen=True)
class Action:
    """What to do with one open record."""

    kind: Literal["close", "heartbeat", "keep"]
    record_id: str
    end: datetime | None = None
    reason: str | None = None
    why: str = ""


def parse_kube_time(value: Any) -> datetime | None:
    """A Kubernetes timestamp (``2026-11-25T21:00:00Z``) as an aware datetime, else None."""
    if isinstance(value, datetime):
        return utc(value) if value.tzinfo else None
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def finished_at(pod: Mapping[str, Any]) -> datetime | None:
    """When the pod's notebook container (else its last container) terminated."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    times: list[datetime] = []
    for status in statuses:
        terminated = ((status or {}).get("state") or {}).get("terminated") or {}
        when = parse_kube_time(terminated.get("finishedAt"))
        if when is None:
            continue
        if status.get("name") == NOTEBOOK_CONTAINER:
            return when
        times.append(when)
    return max(times) if times else None


def clamp(value: datetime, low: datetime, high: datetime) -> datetime:
    """``value`` within ``[low, high]`` (``low`` wins if ``high < low``)."""
    return max(low, min(value, high))


def _pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def reconcile(
    open_records: Iterable[SessionRecord],
    pods: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    listed_namespaces: Iterable[str] | None = None,
    skew: timedelta = timedelta(seconds=120),
) -> list[Action]:
    """Decide, for every open record, to close it, heartbeat it or keep it (see module)."""
    now = utc(now)
    by_key = {_pod_key(pod): pod for pod in pods}
    listed = None if listed_namespaces is None else set(listed_namespaces)
    actions: list[Action] = []
    for record in open_records:
        rid = record.record_id
        if not record.namespace or not record.pod:
            actions.append(Action("keep", rid, why="no pod recorded"))
            continue
        if listed is not None and record.namespace not in listed:
            actions.append(Action("keep", rid, why="namespace not listed"))
            continue
        seen = max(record.last_seen or record.start, record.start)
        pod = by_key.get((record.namespace, record.pod))
        created = parse_kube_time(((pod or {}).get("metadata") or {}).get("creationTimestamp"))
        if pod is not None and created is not None and created > record.start + skew:
            actions.append(Action("close", rid, seen, "vanished", "replaced by a newer pod"))
            continue
        if pod is None:
            actions.append(Action("close", rid, seen, "vanished", "pod gone"))
            continue
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            actions.append(Action("keep", rid, why="pod being deleted"))
            continue
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            finished = finished_at(pod)
            end = seen if finished is None else clamp(finished, seen, now)
            actions.append(Action("close", rid, end, "poll", f"pod {phase}"))
            continue
        actions.append(Action("heartbeat", rid, now, why=f"pod {phase or 'unknown'}"))
    return actions


@dataclass(frozen=True)
class ReconcileReport:
    """What one run did."""

    closed: tuple[str, ...]
    heartbeats: int
    kept: int
    failed_namespaces: tuple[str, ...]


ListPods = Callable[[str], Awaitable[Sequence[Mapping[str, Any]]]]


async def _list_namespaces(
    records: Sequence[SessionRecord], list_pods: ListPods
) -> tuple[list[Mapping[str, Any]], list[str], list[str]]:
    """The pods of the records' namespaces, the namespaces listed, and those that failed."""
    pods: list[Mapping[str, Any]] = []
    listed: list[str] = []
    failed: list[str] = []
    for namespace in sorted({r.namespace for r in records if r.namespace}):
        try:
            pods.extend(await list_pods(namespace))
            listed.append(namespace)
        except Exception as error:
            log.error(
                "Accounting reconciler could not list pods in namespace %s (%s: %s); "
                "its open records are left for the next run",
                namespace,
                type(error).__name__,
                str(error)[:200],
            )
            failed.append(namespace)
    return pods, listed, failed


def _queue_close(writer: Any, record: SessionRecord, why: str, end: datetime, reason: str) -> None:
    log.warning(
        "Accounting: closing session %s of %s (%s/%s): %s, end %s",
        record.record_id,
        record.hub_user,
        record.namespace,
        record.pod,
        why,
        end.isoformat(),
    )
    writer.queue_close(record.record_id, end, reason)


async def reconcile_once(
    writer: Any,
    list_pods: ListPods,
    now: Callable[[], datetime],
    *,
    skew: timedelta = timedelta(seconds=120),
    skip: Callable[[str], bool] | None = None,
    on_close: Callable[[SessionRecord, Action], None] | None = None,
) -> ReconcileReport:
    """One run: retry queued writes, read open records, list their namespaces, act.

    ``writer`` is an :class:`~iris_jupyterhub.accounting.writer.AccountingWriter`;
    ``list_pods(namespace)`` returns the pods as Kubernetes API dicts. A namespace that
    cannot be listed is logged and its records are left alone, as are records for which
    ``skip(record_id)`` is true (servers a running spawner tracks itself).
    """
    await writer.flush()
    records: list[SessionRecord] = await writer.read(lambda store: store.open_sessions())
    if skip is not None:
        records = [r for r in records if not skip(r.record_id)]
    pods, listed, failed = await _list_namespaces(records, list_pods)
    at = now()
    actions = reconcile(records, pods, at, listed_namespaces=listed, skew=skew)
    by_id = {r.record_id: r for r in records}
    beats = [a.record_id for a in actions if a.kind == "heartbeat"]
    if beats:
        writer.queue_heartbeat(beats, at)
    closed = []
    for action in actions:
        if action.kind == "close" and action.end is not None and action.reason:
            record = by_id[action.record_id]
            _queue_close(writer, record, action.why, action.end, action.reason)
            closed.append(action.record_id)
            if on_close is not None:
                on_close(record, action)
    await writer.flush()
    return ReconcileReport(
        closed=tuple(closed),
        heartbeats=len(beats),
        kept=sum(1 for a in actions if a.kind == "keep"),
        failed_namespaces=tuple(failed),
    )
