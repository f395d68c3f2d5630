"""The reconciler inside the hub: one asyncio task per hub process.

The first ``start()`` or ``poll()`` of an ``IRISSpawner`` in a hub process (at start-up,
JupyterHub polls every server it believes running) starts :func:`run_reconciler` through
:func:`ensure_reconciler`: one run at once, then one every
``SessionAccounting.reconcile_interval`` seconds. It lists the pods with
KubeSpawner's own API client and label selector (``component=singleuser-server``), in
the namespaces of the open records.

Records of servers this hub process is tracking (started here, or restored from the
spawner state at start-up) are left to the spawner: its poll and post-stop hook know
more exactly when the server ended. The reconciler closes the others: sessions whose
spawner state was lost, sessions of a replica that is gone, closes that failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .config import SessionAccounting
from .metrics import session_metrics
from .reconcile import ReconcileReport, reconcile_once
from .writer import AccountingWriter

__all__ = ["ensure_reconciler", "kube_pod_lister", "run_reconciler"]

_RECONCILER: list[asyncio.Future[list[ReconcileReport]]] = []


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def kube_pod_lister(api: Any, label_selector: str) -> Callable[[str], Any]:
    """``list_pods(namespace)`` over a ``kubernetes_asyncio`` ``CoreV1Api``, as API dicts."""

    async def list_pods(namespace: str) -> Sequence[Mapping[str, Any]]:
        result = await api.list_namespaced_pod(
            namespace, label_selector=label_selector, _request_timeout=30
        )
        data = api.api_client.sanitize_for_serialization(result)
        items: list[Mapping[str, Any]] = (data or {}).get("items") or []
        return items

    return list_pods


async def run_reconciler(
    settings: SessionAccounting,
    writer: AccountingWriter,
    api: Any,
    *,
    label_selector: str,
    log: logging.Logger,
    runs: int | None = None,
) -> list[ReconcileReport]:
    """Reconcile now and every ``reconcile_interval`` (forever, or ``runs`` times)."""
    metrics = session_metrics(settings.per_user_metric_labels)
    list_pods = kube_pod_lister(api, label_selector)
    skew = timedelta(seconds=settings.clock_skew_tolerance)
    reports: list[ReconcileReport] = []
    while runs is None or len(reports) < runs:
        try:
            report = await reconcile_once(
                writer,
                list_pods,
                _utcnow,
                skew=skew,
                skip=metrics.is_active,
                on_close=lambda record, _action: metrics.session_ended(record.record_id),
            )
            reports.append(report)
            log.debug("Accounting reconciler: %s", report)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.error(
                "Accounting reconciler run failed (%s: %s); next run in %ss",
                type(error).__name__,
                str(error)[:200],
                settings.reconcile_interval,
            )
        if not settings.reconcile_interval:
            break
        await asyncio.sleep(settings.reconcile_interval)
    return reports


def ensure_reconciler(
    settings: SessionAccounting,
    writer: AccountingWriter,
    api: Any,
    *,
    label_selector: str,
    log: logging.Logger,
) -> None:
    """Start this process's :func:`run_reconciler` task, once per process.

    Called from the spawner's ``start()`` and ``poll()``, i.e. in the hub's event loop.
    """
    if _RECONCILER:
        return
    _RECONCILER.append(
        asyncio.ensure_future(
            run_reconciler(settings, writer, api, label_selector=label_selector, log=log)
        )
    )
