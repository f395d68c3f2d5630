"""The ``iris_*`` metrics in prometheus_client's default registry (what ``/hub/metrics`` shows)."""

from __future__ import annotations

import importlib
import sys

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from iris_jupyterhub.accounting.metrics import SessionLabels, SessionMetrics, session_metrics

METRICS = session_metrics()  # the first use in this process: without per-user labels


def sample(name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


def test_active_sessions_count_each_record_once() -> None:
    metrics = session_metrics()
    labels = SessionLabels.of("gpu-test", "test/metrics")
    before = sample("iris_sessions_active", profile="gpu-test", group="test/metrics")
    metrics.session_started("m-1", labels)
    metrics.session_started("m-1", labels)  # restored and started: still one
    metrics.session_started("m-2", labels)
    assert sample("iris_sessions_active", profile="gpu-test", group="test/metrics") == before + 2
    metrics.session_ended("m-1")
    metrics.session_ended("m-1")  # the hook and the reconciler: one decrement
    assert sample("iris_sessions_active", profile="gpu-test", group="test/metrics") == before + 1
    metrics.session_ended("m-2")
    metrics.session_ended("never-started")
    assert sample("iris_sessions_active", profile="gpu-test", group="test/metrics") == before


def test_unknown_profile_and_group_are_none() -> None:
    labels = SessionLabels.of(None, None)
    assert (labels.profile, labels.group) == ("none", "none")
    metrics = session_metrics()
    before = sample("iris_spawn_duration_seconds_count", profile="none", group="none")
    metrics.spawned(labels, 3.2)
    assert sample("iris_spawn_duration_seconds_count", profile="none", group="none") == before + 1
    assert (
        sample("iris_spawn_duration_seconds_bucket", profile="none", group="none", le="5.0")
        >= before + 1
    )


def test_usage_counters_add_allocation_times_hours() -> None:
    metrics = session_metrics()
    labels = SessionLabels.of("standard", "test/usage")
    cpu = sample("iris_cpu_hours_total", group="test/usage")
    gpu = sample("iris_gpu_hours_total", group="test/usage")
    mem = sample("iris_memory_gib_hours_total", group="test/usage")
    metrics.used(labels, 1800, cpus=2.0, gpus=1, memory=4 * 2**30)  # half an hour
    metrics.used(labels, -5, cpus=2.0, gpus=1, memory=4 * 2**30)  # never backwards
    assert sample("iris_cpu_hours_total", group="test/usage") == cpu + 1.0
    assert sample("iris_gpu_hours_total", group="test/usage") == gpu + 0.5
    assert sample("iris_memory_gib_hours_total", group="test/usage") == mem + 2.0


def test_no_user_label_unless_asked() -> None:
    assert not METRICS.per_user
    assert session_metrics(per_user=True) is METRICS  # the first use of the process decided
    METRICS.session_started("m-user", SessionLabels.of("standard", "test/user", user="ada"))
    METRICS.session_ended("m-user")
    text = generate_latest(REGISTRY).decode()
    assert 'user="' not in "\n".join(
        line for line in text.splitlines() if line.startswith("iris_")
    )


def test_reimport_reuses_the_registered_metrics() -> None:
    module = sys.modules["iris_jupyterhub.accounting.metrics"]
    try:
        fresh = importlib.reload(module)
        again: SessionMetrics = fresh.session_metrics()
        assert again is not METRICS
        assert again.active is METRICS.active  # the registered collector, not a duplicate
        again.session_started("m-reload", fresh.SessionLabels.of("standard", "test/reload"))
        assert sample("iris_sessions_active", profile="standard", group="test/reload") == 1
        again.session_ended("m-reload")
    finally:
        importlib.reload(module)
