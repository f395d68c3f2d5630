"""Applying prepared storage to a spawner's traits (list- and dict-shaped, clashes, braces)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from iris_jupyterhub.storage.spawner import apply_pod_storage, literal, prepare_storage
from iris_jupyterhub.storage.volumes import PodStorage

STORAGE = PodStorage(
    volumes=[{"name": "iris-home-a", "persistentVolumeClaim": {"claimName": "iris-home-a"}}],
    volume_mounts=[{"name": "iris-home-a", "mountPath": "/home/ada"}],
    init_containers=[{"name": "iris-storage-init", "command": ["/bin/sh", "-c", "f() { :; }"]}],
)


def spawner(**traits: Any) -> SimpleNamespace:
    base: dict[str, Any] = {
        "volumes": [],
        "volume_mounts": [],
        "init_containers": [],
        "environment": {"HOME": "/home/ada", "NB_USER": "ada"},
        "pod_security_context": {"runAsUser": 2000001, "fsGroup": 2000001},
        "fs_gid": 2000001,
        "log": logging.getLogger("spawner"),
    }
    return SimpleNamespace(**{**base, **traits})


def test_list_traits_are_extended_and_braces_survive_kubespawner_expansion() -> None:
    s = spawner(volumes=[{"name": "scratch", "emptyDir": {}}])
    apply_pod_storage(s, STORAGE, home="/home/ada")
    assert [v["name"] for v in s.volumes] == ["scratch", "iris-home-a"]
    assert s.volume_mounts == STORAGE.volume_mounts
    script = s.init_containers[0]["command"][-1]
    assert script.format() == "f() { :; }"  # what KubeSpawner's str.format gives back
    assert s.environment == {"HOME": "/home/ada", "NB_USER": "ada"}
    # no fsGroup with shares: kubelet would re-group whole homes (ceph-csi fsGroupPolicy File)
    assert s.pod_security_context == {"runAsUser": 2000001}
    assert s.fs_gid is None


def test_dict_traits_get_named_entries() -> None:
    s = spawner(volumes={"a": {"name": "a"}}, volume_mounts={}, init_containers={})
    apply_pod_storage(s, STORAGE, home="/home/ada")
    assert set(s.volumes) == {"a", "iris-storage-iris-home-a"}
    assert set(s.init_containers) == {"iris-storage-iris-storage-init"}


def test_a_mount_at_the_home_path_is_replaced_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = spawner(volume_mounts=[{"name": "volume-ada", "mountPath": "/home/ada"}])
    apply_pod_storage(s, STORAGE, home="/home/ada")
    assert s.volume_mounts == STORAGE.volume_mounts
    assert "already mounts something at /home/ada" in caplog.text


def test_literal() -> None:
    assert literal({"a": ["{x}", 1, ("}",)]}) == {"a": ["{{x}}", 1, ["}}"]]}


async def test_storage_is_off_without_a_manila_storage_section() -> None:
    """No c.ManilaStorage at all, or enabled False: nothing is prepared or changed."""
    configured = Config()
    configured.ManilaStorage.enabled = False
    for config in (Config(), configured):
        s = spawner(config=config)
        assert await prepare_storage(s, {"identity": {}, "posix": {}}) is None
        assert s.volumes == []
        assert s.init_containers == []
        assert s.pod_security_context == {"runAsUser": 2000001, "fsGroup": 2000001}
