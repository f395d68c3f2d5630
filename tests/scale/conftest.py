"""Fixtures of the scale stage (``@pytest.mark.scale``; ``make test-scale``).

The size comes from ``IRIS_SCALE`` (``smoke``, the default and CI's, or ``full``):
:func:`devstack.scale.scale_size`. The harness itself is :mod:`devstack.scale`:

- ``scale_size``: the :class:`~devstack.scale.ScaleSize` of this run;
- ``scale_standin``: the Kubernetes stand-in (no server processes) and the port of the one
  stub server that answers for every pod, for the whole session;
- ``scale_hub_factory(spawner="iris", extra_config="", quota=...)``: a real hub
  (:class:`~devstack.scale.ScaleHub`: IdP, JupyterHub, proxy) on that stand-in; every hub
  made is stopped at the end of the module (servers are left to the stand-in);
- ``scale_users``: the filler users' names (``s0000``...), ``scale_size.servers`` of them
  (:meth:`~devstack.scale.ScaleHub.add_users_like` creates them on a hub).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack import scale as harness
from devstack.kube import KubeStandIn
from devstack.scale import ScaleHub, ScaleSize

_HUBS = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    # also registered in pyproject.toml (S1); here so the stage runs on its own too
    config.addinivalue_line(
        "markers", "scale: the scale, burst and fault stage (tests/scale; IRIS_SCALE)"
    )


@pytest.fixture(scope="session")
def scale_size() -> ScaleSize:
    """The :class:`~devstack.scale.ScaleSize` named by ``IRIS_SCALE``."""
    return harness.scale_size()


@pytest.fixture(scope="session")
def scale_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KubeStandIn, int]]:
    """The Kubernetes stand-in (fake kubelet, no server processes) and the stub port."""
    with harness.standin(tmp_path_factory.mktemp("scale-kube")) as pair:
        yield pair


@pytest.fixture(scope="module")
def scale_hub_factory(
    tmp_path_factory: pytest.TempPathFactory, scale_standin: tuple[KubeStandIn, int]
) -> Iterator[Callable[..., ScaleHub]]:
    """``make(spawner="iris", quota=100_000, extra_config="")``: a hub on the stand-in."""
    kube, port = scale_standin
    started: list[ScaleHub] = []

    def make(spawner: str = "iris", quota: int = 100_000, extra_config: str = "") -> ScaleHub:
        workdir: Path = tmp_path_factory.mktemp(f"scale-hub{next(_HUBS)}")
        hub = ScaleHub.start(workdir, kube, port, spawner, quota=quota, extra_config=extra_config)
        started.append(hub)
        return hub

    yield make
    for hub in started:
        hub.stop()


@pytest.fixture(scope="module")
def scale_users(scale_size: ScaleSize) -> list[str]:
    """The filler users' names (``s0000``...), ``scale_size.servers`` of them."""
    return [f"s{i:04d}" for i in range(scale_size.servers)]
