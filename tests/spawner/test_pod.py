"""The pod assembled from a POSIX identity, a group choice and storage, as plain data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from iris_jupyterhub.spawner.errors import SpawnRequestError
from iris_jupyterhub.spawner.pod import PodSettings, build_pod, literal, spawner_traits
from iris_jupyterhub.storage.volumes import PodStorage

ALICE: dict[str, Any] = {
    "uid": 2000001,
    "gid": 2000001,
    "username": "alice",
    "groups": [
        {"name": "alice", "gid": 2000001},
        {"name": "iris", "gid": 3000001},
        {"name": "lsst", "gid": 3000002},
    ],
}


STORAGE = PodStorage(
    volumes=[{"name": "iris-home-a", "persistentVolumeClaim": {"claimName": "iris-home-a"}}],
    volume_mounts=[{"name": "iris-home-a", "mountPath": "/home/alice-share"}],
    init_containers=[{"name": "iris-storage-init", "command": ["/bin/sh", "-c", "f() { :; }"]}],
    home="/home/alice-share",
)


def test_personal_group_by_default() -> None:
    settings = build_pod(ALICE, None, None)
    assert (settings.uid, settings.gid, settings.fs_gid) == (2000001, 2000001, 2000001)
    assert settings.supplemental_gids == [2000001, 3000001, 3000002]
    assert settings.pod_security_context == {
        "runAsUser": 2000001,
        "runAsGroup": 2000001,
        "fsGroup": 2000001,
        "supplementalGroups": [2000001, 3000001, 3000002],
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert settings.container_security_context == {
        "runAsUser": 2000001,
        "runAsGroup": 2000001,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert settings.environment == {
        "NB_USER": "alice",
        "NB_UID": "2000001",
        "NB_GID": "2000001",
        "HOME": "/home/alice",
    }
    assert (settings.group, settings.notice) == ("alice", None)
    assert (settings.volumes, settings.volume_mounts, settings.init_containers) == ([], [], [])
    assert build_pod(ALICE, "", None).group == "alice"


def test_storage_mounts_shares_without_fs_group_and_sets_home() -> None:
    """No fsGroup with shares: kubelet would re-group whole homes (ceph-csi fsGroupPolicy
    File); the session's group still applies through runAsGroup/supplementalGroups."""
    settings = build_pod(ALICE, "lsst", STORAGE)
    assert settings.fs_gid is None
    assert "fsGroup" not in settings.pod_security_context
    assert settings.pod_security_context["runAsGroup"] == 3000002
    assert settings.pod_security_context["supplementalGroups"] == [2000001, 3000001, 3000002]
    assert settings.environment["HOME"] == "/home/alice-share"
    assert settings.volumes == STORAGE.volumes
    assert settings.volume_mounts == STORAGE.volume_mounts
    assert settings.init_containers == STORAGE.init_containers


def test_storage_without_volumes_keeps_fs_group() -> None:
    settings = build_pod(ALICE, None, PodStorage([], [], []))
    assert settings.fs_gid == 2000001
    assert settings.pod_security_context["fsGroup"] == 2000001
    assert settings.environment["HOME"] == "/home/alice"


def test_chosen_group_is_primary_and_fs_group() -> None:
    settings = build_pod(ALICE, "lsst", None)
    assert settings.pod_security_context["runAsGroup"] == 3000002
    assert settings.pod_security_context["fsGroup"] == 3000002
    assert settings.container_security_context["runAsGroup"] == 3000002
    assert settings.pod_security_context["supplementalGroups"] == [2000001, 3000001, 3000002]
    assert settings.environment["NB_GID"] == "3000002"
    assert settings.group == "lsst"


@pytest.mark.parametrize("group", ["dune", "root", "ALICE"])
def test_group_the_user_is_not_in_is_forbidden(group: str) -> None:
    with pytest.raises(SpawnRequestError) as caught:
        build_pod(ALICE, group, STORAGE)
    assert caught.value.status == 403
    assert "alice, iris, lsst" in caught.value.message


def test_stale_group_falls_back_to_personal_with_notice() -> None:
    settings = build_pod(ALICE, "dune", None, stale_fallback=True)
    assert settings.group == "alice"
    assert settings.pod_security_context["fsGroup"] == 2000001
    assert settings.notice is not None
    assert "'dune'" in settings.notice


def test_non_text_group_is_a_bad_request() -> None:
    with pytest.raises(SpawnRequestError) as caught:
        build_pod(ALICE, 3000001, None)  # type: ignore[arg-type]
    assert caught.value.status == 400


def changed(**change: Any) -> dict[str, Any]:
    posix = copy.deepcopy(ALICE)
    posix.update(change)
    return posix


@pytest.mark.parametrize(
    "posix",
    [
        None,
        {},
        changed(uid=0),
        changed(uid="2000001"),
        changed(gid=True),
        changed(uid=2**31),
        changed(username="../root"),
        changed(username=None),
        changed(groups=None),
        changed(groups=[{"name": "x"}]),
        changed(groups=[{"name": "wheel ", "gid": 3000003}]),
        changed(groups=[{"name": "root", "gid": 0}]),
    ],
)
def test_missing_or_invalid_posix_identity_is_a_clear_error(posix: Any) -> None:
    with pytest.raises(SpawnRequestError) as caught:
        build_pod(posix, None, STORAGE)
    assert caught.value.status == 500
    assert "log out and log in again" in caught.value.message
    assert "auth_state['posix']" in str(caught.value)


# --- merging into the spawner's traits -----------------------------------------------------


def current(**traits: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "volumes": [],
        "volume_mounts": [],
        "init_containers": [],
        "environment": {"HOME": "/home/ada", "LANG": "C.UTF-8"},
    }
    return {**base, **traits}


def test_traits_without_storage_leave_volumes_alone() -> None:
    traits, clash = spawner_traits(build_pod(ALICE, None, None), current())
    assert clash == []
    assert not {"volumes", "volume_mounts", "init_containers"} & set(traits)
    assert traits["fs_gid"] == 2000001
    assert traits["environment"] == {
        "LANG": "C.UTF-8",
        "NB_USER": "alice",
        "NB_UID": "2000001",
        "NB_GID": "2000001",
        "HOME": "/home/alice",
    }
    assert (traits["allow_privilege_escalation"], traits["privileged"]) == (False, False)


def test_list_traits_are_extended_and_braces_survive_kubespawner_expansion() -> None:
    pod = build_pod(ALICE, None, STORAGE)
    traits, _ = spawner_traits(pod, current(volumes=[{"name": "scratch", "emptyDir": {}}]))
    assert [v["name"] for v in traits["volumes"]] == ["scratch", "iris-home-a"]
    assert traits["volume_mounts"] == STORAGE.volume_mounts
    script = traits["init_containers"][0]["command"][-1]
    assert script.format() == "f() { :; }"  # what KubeSpawner's str.format gives back
    assert traits["environment"]["HOME"] == "/home/alice-share"
    assert traits["fs_gid"] is None
    assert "fsGroup" not in traits["pod_security_context"]


def test_dict_traits_get_named_entries() -> None:
    pod = build_pod(ALICE, None, STORAGE)
    traits, _ = spawner_traits(
        pod, current(volumes={"a": {"name": "a"}}, volume_mounts={}, init_containers={})
    )
    assert set(traits["volumes"]) == {"a", "iris-storage-iris-home-a"}
    assert set(traits["volume_mounts"]) == {"iris-storage-iris-home-a"}
    assert set(traits["init_containers"]) == {"iris-storage-iris-storage-init"}


@pytest.mark.parametrize("shape", [list, dict])
def test_a_mount_at_the_home_path_is_replaced_and_reported(shape: type) -> None:
    other = {"name": "volume-alice", "mountPath": "/home/alice-share"}
    kept = {"name": "data", "mountPath": "/data"}
    mounts: Any = [other, kept] if shape is list else {"home": other, "data": kept}
    traits, clash = spawner_traits(build_pod(ALICE, None, STORAGE), current(volume_mounts=mounts))
    assert clash == ["/home/alice-share"]
    merged = traits["volume_mounts"]
    paths = [m["mountPath"] for m in (merged.values() if shape is dict else merged)]
    assert sorted(paths) == ["/data", "/home/alice-share"]
    assert other not in (list(merged.values()) if shape is dict else merged)


def test_literal() -> None:
    assert literal({"a": ["{x}", 1, ("}",)]}) == {"a": ["{{x}}", 1, ["}}"]]}


def test_pod_settings_are_plain_data() -> None:
    pod = build_pod(ALICE, "iris", STORAGE)
    assert isinstance(pod, PodSettings)
    assert pod == build_pod(copy.deepcopy(ALICE), "iris", STORAGE)


def test_pod_for_a_checked_identity_is_build_pod() -> None:
    from iris_jupyterhub.spawner.pod import pod_for
    from iris_jupyterhub.spawner.security import run_as

    for group, storage in ((None, None), ("lsst", STORAGE), ("lsst", None)):
        assert pod_for(run_as(ALICE, group), storage) == build_pod(ALICE, group, storage)
