"""Recording sessions from the spawner: :class:`AccountingMixin`.

The mixin (a base of :class:`~iris_jupyterhub.spawner.IRISSpawner`) extends four
JupyterHub hooks, each calling ``super()`` first or last so KubeSpawner and the admin's
own hooks run unchanged:

- ``start()``: once KubeSpawner reports the pod running, a record is opened;
- ``poll()``: while the server runs, a heartbeat (``last_seen``) every
  ``SessionAccounting.heartbeat_interval``; when poll finds the server dead, the stop
  that follows is recorded as ``poll``;
- ``run_post_stop_hook()``: JupyterHub calls it after every stop, including stops it
  found by polling and stops at start-up of servers that died while the hub was down;
  the record is closed (reason ``stopped``, ``poll``, or ``failed`` when the pod ran
  but the server never answered the hub), then the admin's ``post_stop_hook`` runs;
- ``get_state``/``load_state``/``clear_state``: the record id travels in the spawner's
  state (``state["iris"]["record_id"]``), so a restarted hub knows each server's record.

The hub calls ``start()`` and ``poll()`` (at start-up, it polls every server it believes
running); the first call in a hub process also starts the process's reconciler
(:func:`~iris_jupyterhub.accounting.runner.ensure_reconciler`). The database is
:meth:`SessionAccounting.resolved_db_url` of the hub's configuration, the one the
``iris-jupyterhub`` commands open with ``--config``.

Time rules (see :func:`~iris_jupyterhub.accounting.sessions.session_start` and
:func:`~iris_jupyterhub.accounting.sessions.session_end`): a session starts when the
hub saw its pod running (hub clock), or at the pod's own ``startTime`` when that is
earlier by no more than ``SessionAccounting.clock_skew_tolerance``; it ends now when the
hub stops it, or when poll finds it dead and the last heartbeat is recent; at the last
heartbeat when that is older than :meth:`SessionAccounting.stale_after` (the hub was down
and cannot know when the server died); at the container's ``finishedAt`` (clamped between
the last heartbeat and now) when Kubernetes reports one. The end is never before the
start.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .config import SessionAccounting
from .metrics import SessionLabels, session_metrics
from .reconcile import finished_at, parse_kube_time
from .records import allocated_cpus, allocated_memory
from .runner import ensure_reconciler
from .sessions import charged_group_of, new_record_id, session_end, session_record, utcnow
from .writer import AccountingWriter, writer_for

__all__ = ["STATE_KEY", "AccountingMixin"]

STATE_KEY = "iris"

_BACKGROUND: set[asyncio.Future[Any]] = set()


def _background(future: Any) -> None:
    task = asyncio.ensure_future(future)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


class AccountingMixin:
    """Session accounting for a KubeSpawner subclass (see the module documentation).

    Every accounting step is wrapped so that a failure is logged and never changes what
    the spawner returns or raises; database writes are queued and retried
    (:class:`~iris_jupyterhub.accounting.writer.AccountingWriter`).
    """

    # attributes of the JupyterHub/KubeSpawner class this is mixed into (for mypy)
    log: Any
    config: Any
    user: Any
    name: str
    namespace: str
    pod_name: str
    poll_interval: float
    api: Any
    component_label: str

    _acct_record_id: str | None = None
    _acct_info: dict[str, Any] | None = None
    _acct_last_seen: datetime | None = None
    _acct_counted_until: datetime | None = None
    _acct_beat_at: float = 0.0
    _acct_dead: bool = False
    _acct_finished: datetime | None = None
    _acct_settings_obj: SessionAccounting | None = None
    _acct_db_url: str | None = None

    # -- plumbing -----------------------------------------------------------------

    @property
    def accounting(self) -> SessionAccounting:
        """This spawner's ``c.SessionAccounting`` options."""
        if self._acct_settings_obj is None:
            self._acct_settings_obj = SessionAccounting(config=self.config, log=self.log)
        return self._acct_settings_obj

    def _acct_writer(self) -> AccountingWriter:
        if self._acct_db_url is None:
            self._acct_db_url = self.accounting.resolved_db_url()
        return writer_for(self._acct_db_url, self.log)

    def _acct_reconcile(self) -> None:
        """Start this hub process's reconciler, once (the hub is starting or polling)."""
        try:
            if self.accounting.enabled:
                ensure_reconciler(
                    self.accounting,
                    self._acct_writer(),
                    self.api,
                    label_selector=f"component={self.component_label}",
                    log=self.log,
                )
        except Exception as error:
            self.log.error("Accounting reconciler not started: %s", error)

    def _acct_labels(self) -> SessionLabels:
        info = self._acct_info or {}
        user = self.user.name if self.accounting.per_user_metric_labels else ""
        return SessionLabels.of(info.get("profile"), charged_group_of(info), user)

    def _acct_metrics(self) -> Any:
        return session_metrics(self.accounting.per_user_metric_labels)

    def _acct_pod(self) -> Mapping[str, Any] | None:
        reflector = getattr(self, "pod_reflector", None)
        pods = getattr(reflector, "pods", None) or {}
        pod = pods.get(f"{self.namespace}/{self.pod_name}")
        return pod if isinstance(pod, Mapping) else None

    def _acct_remember(self, info: dict[str, Any] | None) -> None:
        """Keep ``info`` in the spawner state, inside IRISSpawner's ``state["iris"]``."""
        self._acct_info = info
        self._acct_record_id = (info or {}).get("record_id")
        if "_iris_state" in dir(type(self)):
            current = dict(getattr(self, "_iris_state", None) or {})
            if info:
                current.update(info)
            else:
                for key in ("record_id", "profile", "alloc"):
                    current.pop(key, None)
            self._iris_state = current or None

    # -- start ----------------------------------------------------------------------

    async def start(self) -> Any:
        self._acct_reconcile()
        self._acct_dead = False
        self._acct_finished = None
        began = time.monotonic()
        result = super().start()  # type: ignore[misc]
        if inspect.isawaitable(result):
            result = await result
        if self.accounting.enabled:
            try:
                await self._acct_open(time.monotonic() - began)
            except Exception:
                self.log.exception("Accounting: could not record the start of %s", self.user.name)
        return result

    async def _acct_open(self, spawn_seconds: float) -> None:
        began = time.monotonic()
        settings = self.accounting
        observed = utcnow()
        auth_state = await self.user.get_auth_state()
        iris_state = getattr(self, "_iris_state", None) or {}
        record = session_record(
            record_id=new_record_id(),
            hub_user=self.user.name,
            server_name=self.name,
            auth_state=auth_state,
            user_options=getattr(self, "user_options", None),
            iris_state=iris_state,
            uid=getattr(self, "uid", None),
            gid=getattr(self, "gid", None),
            image=getattr(self, "image", None),
            cpu_guarantee=getattr(self, "cpu_guarantee", None),
            cpu_limit=getattr(self, "cpu_limit", None),
            mem_guarantee=getattr(self, "mem_guarantee", None),
            mem_limit=getattr(self, "mem_limit", None),
            namespace=self.namespace,
            pod_name=self.pod_name,
            pod=self._acct_pod(),
            observed=observed,
            tolerance=timedelta(seconds=settings.clock_skew_tolerance),
        )
        self._acct_remember(
            {
                "record_id": record.record_id,
                "profile": record.profile,
                "alloc": [allocated_cpus(record), record.gpus, allocated_memory(record)],
                "start": record.start.isoformat(),
                "charge_group": record.canonical_group,
            }
        )
        self._acct_last_seen = observed
        self._acct_counted_until = record.start
        self._acct_beat_at = time.monotonic()
        metrics = self._acct_metrics()
        metrics.session_started(record.record_id, self._acct_labels())
        metrics.spawned(self._acct_labels(), spawn_seconds)
        writer = self._acct_writer()
        writer.queue_open(record)
        await writer.flush()
        self.log.info(
            "Accounting: session %s of %s started (%s, group %s), recorded in %.1f ms",
            record.record_id,
            self.user.name,
            record.profile or "no profile",
            record.canonical_group or record.group,
            (time.monotonic() - began) * 1e3,
        )

    # -- poll (heartbeats) ------------------------------------------------------------

    async def poll(self) -> Any:
        self._acct_reconcile()
        pod = self._acct_pod() if self._acct_record_id else None
        status = await super().poll()  # type: ignore[misc]
        if self._acct_record_id and self.accounting.enabled:
            try:
                if status is None:
                    self._acct_heartbeat()
                else:
                    self._acct_dead = True
                    self._acct_finished = finished_at(pod) if pod else None
            except Exception:
                self.log.exception("Accounting: heartbeat of %s failed", self.user.name)
        return status

    def _acct_count_usage(self, until: datetime) -> None:
        since = self._acct_counted_until
        self._acct_counted_until = until
        if since is None or self._acct_info is None:
            return
        cpus, gpus, memory = [*(self._acct_info.get("alloc") or []), 1.0, 0, None][:3]
        self._acct_metrics().used(
            self._acct_labels(), (until - since).total_seconds(), float(cpus), int(gpus), memory
        )

    def _acct_heartbeat(self) -> None:
        if time.monotonic() - self._acct_beat_at < self.accounting.heartbeat_interval:
            return
        record_id = self._acct_record_id
        if record_id is None:
            return
        now = utcnow()
        self._acct_beat_at = time.monotonic()
        self._acct_last_seen = now
        if self._acct_counted_until is None:  # first heartbeat after a hub restart
            self._acct_counted_until = now
        self._acct_count_usage(now)
        writer = self._acct_writer()
        writer.queue_heartbeat([record_id], now)
        _background(writer.flush())

    # -- stop ---------------------------------------------------------------------------

    def run_post_stop_hook(self) -> Any:
        return self._acct_post_stop()

    async def _acct_post_stop(self) -> Any:
        if self._acct_record_id and self.accounting.enabled:
            try:
                await self._acct_close()
            except Exception:
                self.log.exception("Accounting: could not record the stop of %s", self.user.name)
        result = super().run_post_stop_hook()  # type: ignore[misc]
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _acct_close(self) -> None:
        record_id = self._acct_record_id
        if record_id is None:
            return
        began = time.monotonic()
        settings = self.accounting
        writer = self._acct_writer()
        now = utcnow()
        start = parse_kube_time((self._acct_info or {}).get("start"))
        last_seen = self._acct_last_seen
        if start is None or (self._acct_dead and last_seen is None):
            try:  # after a hub restart: what the database knows
                stored = await writer.read(lambda store: store.get(record_id))
            except Exception as error:
                self.log.error("Accounting: could not read session %s: %s", record_id, error)
                stored = None
            if stored is not None:
                start = start or stored.start
                last_seen = last_seen or stored.last_seen
        start = start or now
        reason = "poll" if self._acct_dead else "stopped"
        if not self._acct_dead and getattr(self, "_waiting_for_response", False):
            # JupyterHub (5.x, 6.x) stops a server that never answered while it still
            # waits for it: the start failed after the pod was running
            reason = "failed"
        end = session_end(
            now,
            start,
            last_seen,
            found_dead=self._acct_dead,
            stale_after=timedelta(seconds=settings.stale_after(self.poll_interval)),
            finished=self._acct_finished,
        )
        if self._acct_counted_until is not None and end > self._acct_counted_until:
            self._acct_count_usage(end)
        self._acct_metrics().session_ended(record_id)
        writer.queue_close(record_id, end, reason)
        await writer.flush()
        self.log.info(
            "Accounting: session %s of %s ended (%s) at %s, recorded in %.1f ms",
            record_id,
            self.user.name,
            reason,
            end.isoformat(),
            (time.monotonic() - began) * 1e3,
        )
        self._acct_dead = False
        self._acct_finished = None

    # -- state ----------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()  # type: ignore[misc]
        if self._acct_info:
            state[STATE_KEY] = {**(state.get(STATE_KEY) or {}), **self._acct_info}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        info = state.get(STATE_KEY) or {}
        record_id = info.get("record_id")
        if not isinstance(record_id, str) or getattr(self, "server", None) is None:
            # no record, or the hub went down in the middle of a stop: the server is not
            # running, so the reconciler (not this spawner) closes a record left open
            return
        self._acct_info = {
            key: info.get(key) for key in ("record_id", "profile", "alloc", "start")
        }
        self._acct_info["charge_group"] = charged_group_of(info)
        self._acct_record_id = record_id
        self._acct_last_seen = None
        self._acct_counted_until = None
        self._acct_beat_at = 0.0
        try:
            if self.accounting.enabled:
                self._acct_metrics().session_started(record_id, self._acct_labels())
        except Exception:
            self.log.exception("Accounting: could not restore session %s", record_id)

    def clear_state(self) -> None:
        super().clear_state()  # type: ignore[misc]
        self._acct_remember(None)
        self._acct_last_seen = None
        self._acct_counted_until = None
