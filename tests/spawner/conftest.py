"""Fixtures: the IdP + a real hub spawning with KubeSpawner against the Kubernetes stand-in.

- ``kube``: one :class:`~devstack.kube.KubeStandIn` per module (fake kubelet on, pods run
  as local ``jupyterhub.singleuser`` processes on their own loopback addresses).
- ``kube_hub_config``: extra hub config appended after
  :data:`~devstack.configs.KUBE_HUB_CONFIG`; override this fixture in a test module (module
  scope) to set e.g. the spawner class or profiles.
- ``kube_stack``: a :class:`~devstack.stacks.KubeStack` (IdP + hub + proxy wired to ``kube``);
  its teardown stops the hub (and so KubeSpawner's reflectors) before the stand-in goes away.
- ``kube_stack_factory(extra_config="")``: more hubs against the same stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devstack.kube import KubeStandIn
from devstack.stacks import KubeStack, start_kube_stack


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandIn]:
    """The Kubernetes API stand-in with its fake kubelet, for the whole module."""
    standin = KubeStandIn(tmp_path_factory.mktemp("kube"))
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def kube_hub_config() -> str:
    """Extra hub config after :data:`~devstack.configs.KUBE_HUB_CONFIG` (override per module)."""
    return ""


@pytest.fixture(scope="module")
def kube_stack_factory(
    tmp_path_factory: pytest.TempPathFactory, kube: KubeStandIn
) -> Iterator[Callable[..., KubeStack]]:
    """``make(extra_config="", provider="iam")``: IdP + hub on ``kube``; all stopped at the end."""
    started: list[KubeStack] = []

    def make(extra_config: str = "", provider: str = "iam") -> KubeStack:
        ks = start_kube_stack(tmp_path_factory.mktemp("kubehub"), kube, extra_config, provider)
        started.append(ks)
        return ks

    yield make
    for item in started:  # hubs (and their reflectors) first; the stand-in after (``kube``)
        item.stop()


@pytest.fixture(scope="module")
def kube_stack(kube_stack_factory: Callable[..., KubeStack], kube_hub_config: str) -> KubeStack:
    """IdP + hub (KubeSpawner) + proxy against the module's stand-in."""
    return kube_stack_factory(kube_hub_config)
