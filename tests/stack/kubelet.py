"""The stand-in's fake kubelet, now in :mod:`iris_jupyterhub.demo.kubelet` (re-exported)."""

from __future__ import annotations

from iris_jupyterhub.demo.kubelet import (
    ACTOR_HEADERS,
    DEFAULT_PORT,
    SINGLEUSER,
    FakeKubelet,
    PodRun,
    log,
    singleuser_command,
)

__all__ = [
    "ACTOR_HEADERS",
    "DEFAULT_PORT",
    "SINGLEUSER",
    "FakeKubelet",
    "PodRun",
    "log",
    "singleuser_command",
]
