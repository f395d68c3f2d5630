"""Prometheus metrics of sessions, in the hub's default registry (shown at ``/hub/metrics``).

- ``iris_sessions_active{profile,group}``: servers running now (started or found running
  by this hub process);
- ``iris_spawn_duration_seconds{profile,group}``: time from the start request until the
  pod runs;
- ``iris_cpu_hours_total{group}``, ``iris_gpu_hours_total{group}``,
  ``iris_memory_gib_hours_total{group}``: allocation x time, added at every heartbeat and
  at the stop, so they grow while sessions run.

``profile`` is the profile slug (``none`` without one), ``group`` the VO group the
session is charged to (also for sessions run as the personal group, see
:mod:`~iris_jupyterhub.spawner.charging`; ``none`` only when the user holds no VO group
that could be charged). With
``SessionAccounting.per_user_metric_labels`` every metric also has a ``user`` label.
The metrics are created once per process (a second import, or a second call with other
label names, reuses the first ones), so label cardinality stays bounded by the profile
list and the groups.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

__all__ = ["SPAWN_BUCKETS", "SessionLabels", "SessionMetrics", "session_metrics"]

SPAWN_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, float("inf"))
"""Histogram buckets of spawn durations (seconds): image pulls can take minutes."""

_NONE = "none"
_GIB = 1024**3
_LOCK = threading.Lock()


@dataclass(frozen=True)
class SessionLabels:
    """The labels of one session; ``user`` is only used with per-user labels on."""

    profile: str = _NONE
    group: str = _NONE
    user: str = ""

    @classmethod
    def of(cls, profile: str | None, group: str | None, user: str = "") -> SessionLabels:
        return cls(profile or _NONE, group or _NONE, user)


def _collector(name: str) -> Any:
    return REGISTRY._names_to_collectors.get(name)  # the only way to look one up


class SessionMetrics:
    """The session metrics of this process; use :func:`session_metrics` to get them."""

    def __init__(self, per_user: bool) -> None:
        self.per_user = per_user
        user = ("user",) if per_user else ()
        self.active: Gauge = _collector("iris_sessions_active") or Gauge(
            "iris_sessions_active",
            "Notebook servers running now, by profile and charged group",
            ("profile", "group", *user),
        )
        self.spawn_duration: Histogram = _collector("iris_spawn_duration_seconds") or Histogram(
            "iris_spawn_duration_seconds",
            "Seconds from a server's start request until its pod runs",
            ("profile", "group", *user),
            buckets=SPAWN_BUCKETS,
        )
        self.cpu_hours: Counter = _collector("iris_cpu_hours") or Counter(
            "iris_cpu_hours", "CPU cores allocated x hours, by charged group", ("group", *user)
        )
        self.gpu_hours: Counter = _collector("iris_gpu_hours") or Counter(
            "iris_gpu_hours", "GPUs allocated x hours, by charged group", ("group", *user)
        )
        self.memory_gib_hours: Counter = _collector("iris_memory_gib_hours") or Counter(
            "iris_memory_gib_hours",
            "Memory allocated (GiB) x hours, by charged group",
            ("group", *user),
        )
        # the label names actually registered (a reimport may find other ones)
        self.per_user = "user" in self.active._labelnames
        self._active: dict[str, SessionLabels] = {}

    def _full(self, labels: SessionLabels) -> tuple[str, ...]:
        return (labels.profile, labels.group, *((labels.user,) if self.per_user else ()))

    def _group(self, labels: SessionLabels) -> tuple[str, ...]:
        return (labels.group, *((labels.user,) if self.per_user else ()))

    def session_started(self, record_id: str, labels: SessionLabels) -> None:
        """Count ``record_id`` as active (once, however often it is reported)."""
        with _LOCK:
            if record_id in self._active:
                return
            self._active[record_id] = labels
        self.active.labels(*self._full(labels)).inc()

    def session_ended(self, record_id: str) -> None:
        """Stop counting ``record_id`` as active (a no-op if it was not)."""
        with _LOCK:
            labels = self._active.pop(record_id, None)
        if labels is not None:
            self.active.labels(*self._full(labels)).dec()

    def is_active(self, record_id: str) -> bool:
        return record_id in self._active

    def spawned(self, labels: SessionLabels, seconds: float) -> None:
        self.spawn_duration.labels(*self._full(labels)).observe(max(0.0, seconds))

    def used(
        self, labels: SessionLabels, seconds: float, cpus: float, gpus: int, memory: int | None
    ) -> None:
        """Add ``seconds`` of a session's allocation to the usage counters."""
        if seconds <= 0:
            return
        hours = seconds / 3600
        key = self._group(labels)
        self.cpu_hours.labels(*key).inc(cpus * hours)
        if gpus:
            self.gpu_hours.labels(*key).inc(gpus * hours)
        if memory:
            self.memory_gib_hours.labels(*key).inc(memory / _GIB * hours)


_METRICS: list[SessionMetrics] = []


def session_metrics(per_user: bool = False) -> SessionMetrics:
    """The process's :class:`SessionMetrics`, created (and registered) on first use."""
    with _LOCK:
        if not _METRICS:
            _METRICS.append(SessionMetrics(per_user))
        return _METRICS[0]
